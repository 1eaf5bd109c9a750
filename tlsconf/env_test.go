package tlsconf_test

import (
	"crypto/tls"
	"os"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/tlsconf"
)

var envVars = []string{
	"OUTBOUND_TLS_CA_FILE",
	"OUTBOUND_TLS_CERT_FILE",
	"OUTBOUND_TLS_KEY_FILE",
	"OUTBOUND_TLS_MIN_VERSION",
	"OUTBOUND_TLS_INSECURE_SKIP_VERIFY",
}

// setEnv unsets every variable of the package, then sets those of vars, all
// restored when t ends. Tests that call it cannot run in parallel.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, k := range envVars {
		t.Setenv(k, "") // registers the restore
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

func TestFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name    string
		vars    map[string]string
		want    tlsconf.Config
		wantErr string
	}{
		{"nothing set", nil, tlsconf.Config{}, ""},
		{"all empty", map[string]string{
			"OUTBOUND_TLS_CA_FILE": "", "OUTBOUND_TLS_CERT_FILE": "", "OUTBOUND_TLS_KEY_FILE": "",
			"OUTBOUND_TLS_MIN_VERSION": "", "OUTBOUND_TLS_INSECURE_SKIP_VERIFY": "",
		}, tlsconf.Config{}, ""},
		{"CA file", map[string]string{"OUTBOUND_TLS_CA_FILE": "/etc/ca.PEM()"}, tlsconf.Config{CAFile: "/etc/ca.PEM()"}, ""},
		{"client certificate", map[string]string{"OUTBOUND_TLS_CERT_FILE": "/c.pem", "OUTBOUND_TLS_KEY_FILE": "/k.pem"},
			tlsconf.Config{CertFile: "/c.pem", KeyFile: "/k.pem"}, ""},
		{"min 1.2", map[string]string{"OUTBOUND_TLS_MIN_VERSION": "1.2"}, tlsconf.Config{MinVersion: tls.VersionTLS12}, ""},
		{"min 1.3", map[string]string{"OUTBOUND_TLS_MIN_VERSION": " 1.3 "}, tlsconf.Config{MinVersion: tls.VersionTLS13}, ""},
		{"insecure", map[string]string{"OUTBOUND_TLS_INSECURE_SKIP_VERIFY": "true"}, tlsconf.Config{InsecureSkipVerify: true}, ""},
		{"insecure 1", map[string]string{"OUTBOUND_TLS_INSECURE_SKIP_VERIFY": "1"}, tlsconf.Config{InsecureSkipVerify: true}, ""},
		{"secure", map[string]string{"OUTBOUND_TLS_INSECURE_SKIP_VERIFY": "false"}, tlsconf.Config{}, ""},

		{"min 1.1", map[string]string{"OUTBOUND_TLS_MIN_VERSION": "1.1"}, tlsconf.Config{},
			`tlsconf: OUTBOUND_TLS_MIN_VERSION="1.1": want 1.2 or 1.3`},
		{"min garbage", map[string]string{"OUTBOUND_TLS_MIN_VERSION": "TLS1.2"}, tlsconf.Config{},
			`tlsconf: OUTBOUND_TLS_MIN_VERSION="TLS1.2": want 1.2 or 1.3`},
		{"insecure garbage", map[string]string{"OUTBOUND_TLS_INSECURE_SKIP_VERIFY": "maybe"}, tlsconf.Config{},
			`tlsconf: OUTBOUND_TLS_INSECURE_SKIP_VERIFY="maybe": want true or false`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.vars)
			got, err := tlsconf.FromEnv()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.CAFile != tt.want.CAFile || got.CertFile != tt.want.CertFile || got.KeyFile != tt.want.KeyFile ||
				got.MinVersion != tt.want.MinVersion || got.InsecureSkipVerify != tt.want.InsecureSkipVerify ||
				got.RootCAs != nil || got.CAPEM != nil || got.Certificates != nil || got.SessionCache != nil || got.Logger != nil {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FromEnv's result builds a working configuration from real files.
func TestFromEnvFiles(t *testing.T) {
	ca := lab.NewCA("Env CA")
	certPEM, keyPEM := lab.KeyPairPEM(ca.IssueSpec(lab.CertSpec{CommonName: "env client", Client: true}))
	setEnv(t, map[string]string{
		"OUTBOUND_TLS_CA_FILE":     writeFile(t, "ca.PEM()", ca.PEM()),
		"OUTBOUND_TLS_CERT_FILE":   writeFile(t, "cert.pem", certPEM),
		"OUTBOUND_TLS_KEY_FILE":    writeFile(t, "key.pem", keyPEM),
		"OUTBOUND_TLS_MIN_VERSION": "1.3",
	})
	cfg, err := tlsconf.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	c := mustClient(t, cfg)
	if c.MinVersion != tls.VersionTLS13 || len(c.Certificates) != 1 || c.RootCAs == nil {
		t.Errorf("MinVersion %s, %d certificates, RootCAs %v", tls.VersionName(c.MinVersion), len(c.Certificates), c.RootCAs)
	}

	t.Setenv("OUTBOUND_TLS_KEY_FILE", "")
	cfg, err = tlsconf.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconf.Client(cfg); err == nil || !strings.Contains(err.Error(), "CertFile and KeyFile must be set together") {
		t.Errorf("Client with a certificate but no key: %v", err)
	}
}
