package transport_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// unsetenv removes key for the duration of the test.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	os.Unsetenv(key)
}

func TestConfigFromEnvPresenceRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  bool
		val  string
		want transport.Backend
	}{
		{"absent", false, "", transport.URLFetch},
		{"empty", true, "", transport.Sockets},
		{"value", true, "anyvalue", transport.Sockets},
		{"false", true, "false", transport.Sockets},
		{"zero", true, "0", transport.Sockets},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.set {
				t.Setenv(transport.EnvSockets, tc.val)
			} else {
				unsetenv(t, transport.EnvSockets)
			}
			cfg, err := transport.ConfigFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Backend != tc.want {
				t.Fatalf("backend %v, want %v", cfg.Backend, tc.want)
			}
		})
	}
}

func TestConfigFromEnvSettings(t *testing.T) {
	unsetenv(t, transport.EnvSockets)
	t.Setenv("OUTBOUND_APP_ID", "")
	t.Setenv("GAE_APPLICATION", "s~my-app")
	t.Setenv("OUTBOUND_DEADLINE", "12s")
	t.Setenv("OUTBOUND_BACKGROUND", "true")
	t.Setenv("OUTBOUND_RETRIES", "3")
	t.Setenv("OUTBOUND_RETRY_WAIT_MIN", "10ms")
	t.Setenv("OUTBOUND_RETRY_WAIT_MAX", "2s")
	t.Setenv("OUTBOUND_TLS_MIN_VERSION", "1.3")
	cfg, err := transport.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URLFetch.AppID != "s~my-app" || cfg.URLFetch.Deadline != 12*time.Second || !cfg.URLFetch.Background || cfg.Retries != 3 ||
		cfg.RetryWaitMin != 10*time.Millisecond || cfg.RetryWaitMax != 2*time.Second || cfg.TLS.MinVersion != 0x0304 {
		t.Fatalf("config = %+v", cfg)
	}
	t.Setenv("OUTBOUND_APP_ID", "explicit")
	if cfg, _ := transport.ConfigFromEnv(); cfg.URLFetch.AppID != "explicit" {
		t.Fatalf("OUTBOUND_APP_ID does not win over GAE_APPLICATION: %q", cfg.URLFetch.AppID)
	}
}

// TestConfigFromEnvAppIDPartition checks that GAE_APPLICATION is kept with
// its partition prefix: App Engine wrote the id as APPLICATION_ID held it,
// "s~my-app", in the User-Agent suffix
// (google/appengine/api/urlfetch_stub.py, _RetrieveURL: "appid: %s" %
// os.getenv('APPLICATION_ID')).
func TestConfigFromEnvAppIDPartition(t *testing.T) {
	unsetenv(t, "OUTBOUND_APP_ID")
	for _, id := range []string{"s~my-app", "e~my-app", "dev~my-app", "example.com:my-app", "s~example.com:my-app", "my-app", "~", "s~"} {
		t.Run(id, func(t *testing.T) {
			t.Setenv("GAE_APPLICATION", id)
			cfg, err := transport.ConfigFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.URLFetch.AppID != id {
				t.Fatalf("AppID %q, want %q as App Engine printed it", cfg.URLFetch.AppID, id)
			}
		})
	}
	t.Run("unset", func(t *testing.T) {
		unsetenv(t, "GAE_APPLICATION")
		cfg, err := transport.ConfigFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.URLFetch.AppID != "" {
			t.Fatalf("AppID %q, want empty (urlfetch's default)", cfg.URLFetch.AppID)
		}
	})
}

func TestConfigFromEnvBadValues(t *testing.T) {
	for key, val := range map[string]string{
		"OUTBOUND_DEADLINE":        "soon",
		"OUTBOUND_RETRIES":         "many",
		"OUTBOUND_BACKGROUND":      "perhaps",
		"OUTBOUND_TLS_MIN_VERSION": "1.0",
	} {
		t.Run(key, func(t *testing.T) {
			t.Setenv(key, val)
			_, err := transport.ConfigFromEnv()
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Fatalf("err = %v, want an error naming %s", err, key)
			}
			if _, err := transport.FromEnv(); err == nil {
				t.Fatal("FromEnv accepted it")
			}
		})
	}
}

// TestConfigFromEnvProxy: OUTBOUND_PROXY names the egress proxy, checked
// when read and never repeated with its password in an error; the
// HTTP_PROXY family is never read.
func TestConfigFromEnvProxy(t *testing.T) {
	unsetenv(t, "OUTBOUND_PROXY")
	for _, key := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		t.Setenv(key, "http://env-proxy.example:3128")
	}
	t.Setenv("NO_PROXY", "")
	cfg, err := transport.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dialer.Proxy != nil {
		t.Fatalf("Proxy %v from the HTTP_PROXY family; want none", cfg.Dialer.Proxy)
	}

	t.Setenv("OUTBOUND_PROXY", "")
	if cfg, err := transport.ConfigFromEnv(); err != nil || cfg.Dialer.Proxy != nil {
		t.Fatalf("empty OUTBOUND_PROXY: %v, %v; want no proxy", cfg.Dialer.Proxy, err)
	}

	t.Setenv("OUTBOUND_PROXY", "http://alice:s3cret@proxy.internal:3128")
	cfg, err = transport.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Dialer.Proxy; p == nil || p.Scheme != "http" || p.Host != "proxy.internal:3128" || p.User.Username() != "alice" {
		t.Fatalf("Proxy %v; want http://alice:...@proxy.internal:3128", p)
	}
	if pw, _ := cfg.Dialer.Proxy.User.Password(); pw != "s3cret" {
		t.Fatalf("password %q", pw)
	}
	if _, err := transport.FromEnv(); err != nil {
		t.Fatalf("FromEnv: %v", err)
	}

	for _, bad := range []string{
		"socks5://alice:s3cret@proxy.internal:1080",
		"http://alice:s3cret@proxy.internal:99999",
		"http://alice:s3cret@proxy.internal:3128/path",
		"alice:s3cret@proxy.internal:3128",
		"http://alice:s3cret@[proxy.internal:3128",
	} {
		t.Run(bad, func(t *testing.T) {
			t.Setenv("OUTBOUND_PROXY", bad)
			_, err := transport.ConfigFromEnv()
			var pe *sockets.ProxyError
			if !errors.As(err, &pe) || pe.Kind != sockets.ProxyInvalid || !strings.Contains(err.Error(), "OUTBOUND_PROXY") {
				t.Fatalf("%v; want a ProxyInvalid naming OUTBOUND_PROXY", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%q repeats the password", err)
			}
			if _, err := transport.FromEnv(); err == nil {
				t.Fatal("FromEnv accepted it")
			}
		})
	}
}
