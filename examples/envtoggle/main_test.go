package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/transport"
)

// clearEnv unsets the variables run reads or sets, for the rest of the
// test; t.Setenv puts back their values when the test ends.
func clearEnv(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		t.Setenv(name, "")
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
}

func writeAppYAML(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name        string
		appYAML     string
		onAppEngine bool
		want        transport.Backend
		wantLine    string
	}{
		{
			name:     "absent",
			appYAML:  "runtime: go126\nenv_variables:\n  OUTBOUND_APP_ID: my-app\n",
			want:     transport.URLFetch,
			wantLine: "GAE_USE_SOCKETS_HTTPLIB is not set",
		},
		{
			name:     "no env_variables at all",
			appYAML:  "runtime: go126\n",
			want:     transport.URLFetch,
			wantLine: "GAE_USE_SOCKETS_HTTPLIB is not set",
		},
		{
			// App Engine tests presence, never the value.
			name:     "set to the empty string",
			appYAML:  "runtime: go126\nenv_variables:\n  GAE_USE_SOCKETS_HTTPLIB: ''\n",
			want:     transport.Sockets,
			wantLine: `GAE_USE_SOCKETS_HTTPLIB is set (to "")`,
		},
		{
			name:     "set to a value",
			appYAML:  "runtime: go126\nenv_variables:\n  GAE_USE_SOCKETS_HTTPLIB: 'anyvalue'\n",
			want:     transport.Sockets,
			wantLine: `GAE_USE_SOCKETS_HTTPLIB is set (to "anyvalue")`,
		},
		{
			// In production the platform has already set the variables
			// (here: none), and app.yaml is not read again.
			name:        "on App Engine",
			appYAML:     "runtime: go126\nenv_variables:\n  GAE_USE_SOCKETS_HTTPLIB: ''\n",
			onAppEngine: true,
			want:        transport.URLFetch,
			wantLine:    "GAE_USE_SOCKETS_HTTPLIB is not set",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t, transport.EnvSockets, "OUTBOUND_APP_ID", "GAE_ENV")
			if tc.onAppEngine {
				t.Setenv("GAE_ENV", "standard")
			}
			var out strings.Builder
			if err := run(writeAppYAML(t, tc.appYAML), &out); err != nil {
				t.Fatalf("run: %v", err)
			}
			if !strings.Contains(out.String(), tc.wantLine+"\n") {
				t.Errorf("output does not say %q:\n%s", tc.wantLine, out.String())
			}
			if want := "backend: " + tc.want.String() + "\n"; !strings.HasSuffix(out.String(), want) {
				t.Errorf("output does not end with %q:\n%s", want, out.String())
			}
			// The environment now selects the same backend for every later
			// transport.FromEnv, as it would on App Engine.
			rt, err := transport.FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := transport.BackendOf(rt); !ok || got != tc.want {
				t.Errorf("transport.FromEnv after run: %s, want %s", got, tc.want)
			}
		})
	}
}

// The app.yaml shipped beside the example selects sockets.
func TestShippedAppYAML(t *testing.T) {
	clearEnv(t, transport.EnvSockets, "OUTBOUND_APP_ID", "GAE_ENV")
	var out strings.Builder
	if err := run("app.yaml", &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.HasSuffix(out.String(), "backend: sockets\n") {
		t.Errorf("output:\n%s\nwant the sockets backend", out.String())
	}
	if got := os.Getenv("OUTBOUND_APP_ID"); got != "my-app" {
		t.Errorf("OUTBOUND_APP_ID = %q, want %q", got, "my-app")
	}
}

func TestRunBadAppYAML(t *testing.T) {
	clearEnv(t, transport.EnvSockets, "GAE_ENV")
	for name, path := range map[string]string{
		"missing file": filepath.Join(t.TempDir(), "app.yaml"),
		"not a map":    writeAppYAML(t, "env_variables: [GAE_USE_SOCKETS_HTTPLIB]\n"),
	} {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			if err := run(path, &out); err == nil {
				t.Errorf("run succeeded:\n%s", out.String())
			}
			if _, set := os.LookupEnv(transport.EnvSockets); set {
				t.Errorf("%s was set from a bad app.yaml", transport.EnvSockets)
			}
		})
	}
}
