package transport_test

import (
	"os"
	"strings"
	"testing"
	"time"

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
	if cfg.AppID != "my-app" || cfg.Deadline != 12*time.Second || !cfg.Background || cfg.Retries != 3 ||
		cfg.RetryWaitMin != 10*time.Millisecond || cfg.RetryWaitMax != 2*time.Second || cfg.TLS.MinVersion != 0x0304 {
		t.Fatalf("config = %+v", cfg)
	}
	t.Setenv("OUTBOUND_APP_ID", "explicit")
	if cfg, _ := transport.ConfigFromEnv(); cfg.AppID != "explicit" {
		t.Fatalf("OUTBOUND_APP_ID does not win over GAE_APPLICATION: %q", cfg.AppID)
	}
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
