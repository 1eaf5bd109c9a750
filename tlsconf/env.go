package tlsconf

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// env holds the TLS settings as read from the environment, one raw string
// per variable; config checks and converts them. The variables are listed
// at [FromEnv].
type env struct {
	// CAFile is OUTBOUND_TLS_CA_FILE, for Config.CAFile.
	CAFile string `envconfig:"OUTBOUND_TLS_CA_FILE" desc:"PEM file of extra CA certificates, added to the system roots"`

	// CertFile is OUTBOUND_TLS_CERT_FILE, for Config.CertFile.
	CertFile string `envconfig:"OUTBOUND_TLS_CERT_FILE" desc:"PEM file of the client certificate"`

	// KeyFile is OUTBOUND_TLS_KEY_FILE, for Config.KeyFile.
	KeyFile string `envconfig:"OUTBOUND_TLS_KEY_FILE" desc:"PEM file of the client certificate's private key"`

	// MinVersion is OUTBOUND_TLS_MIN_VERSION: "1.2", "1.3" or empty.
	MinVersion string `envconfig:"OUTBOUND_TLS_MIN_VERSION" desc:"lowest TLS version: 1.2 (default) or 1.3"`

	// InsecureSkipVerify is OUTBOUND_TLS_INSECURE_SKIP_VERIFY, a boolean
	// in strconv.ParseBool form or empty.
	InsecureSkipVerify string `envconfig:"OUTBOUND_TLS_INSECURE_SKIP_VERIFY" desc:"true DISABLES certificate verification (debugging only)"`
}

// config converts e to a [Config]. It checks MinVersion and
// InsecureSkipVerify and returns an error naming the variable if one is
// malformed; the other fields are copied as they are.
func (e env) config() (Config, error) {
	cfg := Config{CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile}
	switch v := strings.TrimSpace(e.MinVersion); v {
	case "":
	case "1.2":
		cfg.MinVersion = tls.VersionTLS12
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return Config{}, fmt.Errorf("tlsconf: OUTBOUND_TLS_MIN_VERSION=%q: want 1.2 or 1.3", e.MinVersion)
	}
	if v := strings.TrimSpace(e.InsecureSkipVerify); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("tlsconf: OUTBOUND_TLS_INSECURE_SKIP_VERIFY=%q: want true or false", e.InsecureSkipVerify)
		}
		cfg.InsecureSkipVerify = b
	}
	return cfg, nil
}

// FromEnv reads these variables from the environment, with envconfig, and
// returns the [Config] they describe:
//
//	Variable                           Config field        Value
//	OUTBOUND_TLS_CA_FILE               CAFile              path of a PEM bundle of extra CAs,
//	                                                       trusted in addition to the system roots
//	OUTBOUND_TLS_CERT_FILE             CertFile            path of the PEM client certificate
//	                                                       (set with OUTBOUND_TLS_KEY_FILE)
//	OUTBOUND_TLS_KEY_FILE              KeyFile             path of its PEM private key
//	OUTBOUND_TLS_MIN_VERSION           MinVersion          "1.2" or "1.3"
//	OUTBOUND_TLS_INSECURE_SKIP_VERIFY  InsecureSkipVerify  "true" turns verification OFF (see
//	                                                       Config.InsecureSkipVerify); any
//	                                                       strconv.ParseBool form is accepted
//
// A variable that is unset or empty leaves its field at the zero value, and
// so at the default of [Config]. A bad value is an error that names the
// variable. The files are read later, by [Client].
//
// It is the only function of the package
// that reads the environment. Fields that no variable sets (RootCAs, CAPEM,
// Certificates, SessionCache, Logger) are zero; the caller may set them, or
// override any value, before calling [Client]. FromEnv is safe for concurrent
// use.
func FromEnv() (Config, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		return Config{}, fmt.Errorf("tlsconf: reading the environment: %w", err)
	}
	return e.config()
}
