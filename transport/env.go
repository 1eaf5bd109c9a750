package transport

import (
	"fmt"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// EnvSockets is the variable whose presence selects the sockets backend.
const EnvSockets = "GAE_USE_SOCKETS_HTTPLIB"

// env is every environment variable the transport reads, in one place, as
// envconfig fills it. It is read only by [ConfigFromEnv] and [FromEnv],
// whose documentation lists the variables.
type env struct {
	UseSockets   *string       `envconfig:"GAE_USE_SOCKETS_HTTPLIB"`
	AppID        string        `envconfig:"OUTBOUND_APP_ID"`
	GAEAppID     string        `envconfig:"GAE_APPLICATION"`
	Deadline     time.Duration `envconfig:"OUTBOUND_DEADLINE"`
	Background   bool          `envconfig:"OUTBOUND_BACKGROUND"`
	Retries      int           `envconfig:"OUTBOUND_RETRIES"`
	RetryWaitMin time.Duration `envconfig:"OUTBOUND_RETRY_WAIT_MIN"`
	RetryWaitMax time.Duration `envconfig:"OUTBOUND_RETRY_WAIT_MAX"`
	Proxy        string        `envconfig:"OUTBOUND_PROXY"`
}

// config converts e to a [Config].
func (e env) config() (Config, error) {
	tc, err := tlsconf.FromEnv() // the OUTBOUND_TLS_* variables
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		URLFetch: URLFetchConfig{
			AppID:      e.AppID,
			Deadline:   e.Deadline,
			Background: e.Background,
		},
		Retries:      e.Retries,
		RetryWaitMin: e.RetryWaitMin,
		RetryWaitMax: e.RetryWaitMax,
		TLS:          tc,
	}
	if e.UseSockets != nil {
		cfg.Backend = Sockets
	}
	if e.Proxy != "" {
		// The error never repeats the URL: it may hold a password.
		if cfg.Dialer.Proxy, err = sockets.ParseProxy(e.Proxy); err != nil {
			return Config{}, fmt.Errorf("transport: OUTBOUND_PROXY: %w", err)
		}
	}
	if cfg.URLFetch.AppID == "" {
		// With its partition prefix ("s~my-app"), as App Engine wrote it
		// in the User-Agent (google/appengine/api/urlfetch_stub.py,
		// _RetrieveURL: "appid: %s" % os.getenv('APPLICATION_ID')).
		cfg.URLFetch.AppID = e.GAEAppID
	}
	return cfg, nil
}

// ConfigFromEnv reads the environment and returns the [Config] it
// describes. These are every variable the transport reads, and the field
// each one sets:
//
//	Variable                  Config field            Meaning
//	GAE_USE_SOCKETS_HTTPLIB   Backend                 present, with ANY value, the empty string
//	                                                  included: Sockets; absent: URLFetch. Only
//	                                                  presence is tested, as on App Engine.
//	OUTBOUND_APP_ID           URLFetch.AppID          the app id in urlfetch's User-Agent suffix
//	GAE_APPLICATION           URLFetch.AppID          the app id when OUTBOUND_APP_ID is unset or
//	                                                  empty (App Engine sets it, e.g. "s~my-app"),
//	                                                  kept whole: App Engine printed the partition
//	                                                  too ("appid: s~my-app")
//	OUTBOUND_DEADLINE         URLFetch.Deadline       urlfetch's deadline over one exchange, a Go
//	                                                  duration ("10s"); default 5s, cut to 60s
//	                                                  (10 minutes with OUTBOUND_BACKGROUND)
//	OUTBOUND_BACKGROUND       URLFetch.Background     "true": urlfetch deadlines up to 10 minutes
//	                                                  (tasks, cron); any strconv.ParseBool form
//	OUTBOUND_RETRIES          Retries                 how many times a failed request is tried
//	                                                  again; default 0
//	OUTBOUND_RETRY_WAIT_MIN   RetryWaitMin            least wait between tries, a Go duration;
//	                                                  default 100ms
//	OUTBOUND_RETRY_WAIT_MAX   RetryWaitMax            most wait between tries; default 5s
//	OUTBOUND_PROXY            Dialer.Proxy            the egress proxy, an http:// or https:// URL
//	                                                  with optional credentials
//	                                                  ("http://user:pass@proxy:3128"), checked by
//	                                                  sockets.ParseProxy; unset or empty: direct
//	OUTBOUND_TLS_CA_FILE      TLS.CAFile              PEM bundle of extra CAs, trusted in addition
//	                                                  to the system roots
//	OUTBOUND_TLS_CERT_FILE    TLS.CertFile            PEM client certificate (with
//	                                                  OUTBOUND_TLS_KEY_FILE)
//	OUTBOUND_TLS_KEY_FILE     TLS.KeyFile             its PEM private key
//	OUTBOUND_TLS_MIN_VERSION  TLS.MinVersion          "1.2" or "1.3"
//	OUTBOUND_TLS_INSECURE_SKIP_VERIFY                 "true" turns certificate verification OFF
//	                          TLS.InsecureSkipVerify  (debugging only; see tlsconf.Config)
//
// The OUTBOUND_TLS_* variables are tlsconf.FromEnv's. HTTP_PROXY,
// HTTPS_PROXY, ALL_PROXY, NO_PROXY and their lower-case forms are never
// read: a proxy taken from the environment would carry connections past
// the destination check. Only OUTBOUND_PROXY names one.
//
// Precedence: a variable that is unset leaves its field at the zero value,
// which means the documented default; so does an empty OUTBOUND_APP_ID,
// GAE_APPLICATION, OUTBOUND_PROXY or OUTBOUND_TLS_* variable. Code that
// needs another value sets the field on the Config that ConfigFromEnv
// returns before it calls [New]. A malformed value is an error that names
// the variable (an empty duration, number or boolean is malformed); a
// malformed OUTBOUND_PROXY is a *sockets.ProxyError whose message never
// repeats the URL's password.
func ConfigFromEnv() (Config, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		return Config{}, fmt.Errorf("transport: reading the environment: %w", err)
	}
	return e.config()
}

// FromEnv builds a Config from the environment with [ConfigFromEnv] and
// calls [New] with it. GAE_USE_SOCKETS_HTTPLIB present, with any value
// including "", selects Sockets; absent selects URLFetch. ConfigFromEnv
// lists every variable, the Config field it sets and its default.
func FromEnv() (*Transport, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
