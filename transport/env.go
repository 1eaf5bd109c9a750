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

// Env is every environment variable the transport reads, in one place. It
// is read only by [ConfigFromEnv] and [FromEnv], when the caller asks.
//
//	Variable                           Meaning
//	GAE_USE_SOCKETS_HTTPLIB            present, with ANY value, the empty string included:
//	                                   the sockets backend; absent: urlfetch. Only presence
//	                                   is tested, as on App Engine.
//	OUTBOUND_APP_ID                    the app id in urlfetch's User-Agent suffix
//	GAE_APPLICATION                    the app id, when OUTBOUND_APP_ID is unset (App Engine
//	                                   sets it, e.g. "s~my-app"), kept whole: App Engine
//	                                   printed the partition too ("appid: s~my-app")
//	OUTBOUND_DEADLINE                  urlfetch's deadline over one exchange, a Go duration
//	                                   ("10s"); default 5s, at most 60s
//	OUTBOUND_BACKGROUND                "true": urlfetch deadlines up to 10 minutes (tasks, cron)
//	OUTBOUND_RETRIES                   how many times a failed request is tried again;
//	                                   default 0
//	OUTBOUND_RETRY_WAIT_MIN            least wait between tries, a Go duration; default 100ms
//	OUTBOUND_RETRY_WAIT_MAX            most wait between tries; default 5s
//	OUTBOUND_PROXY                     the egress proxy, an http:// or https:// URL with
//	                                   optional credentials ("http://user:pass@proxy:3128"):
//	                                   see [Config.Proxy]; unset or empty: direct
//	OUTBOUND_TLS_CA_FILE, ...          TLS settings: see [tlsconf.Env]
//
// HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY and their lower-case forms
// are never read: a proxy taken from the environment would carry
// connections past the destination check. Only OUTBOUND_PROXY names one.
//
// Precedence: a variable that is unset leaves the [Config] field at its
// zero value, which means the documented default. Code that needs another
// value sets the field on the Config that [ConfigFromEnv] returns before it
// calls [New].
type Env struct {
	UseSockets   *string       `envconfig:"GAE_USE_SOCKETS_HTTPLIB"`
	AppID        string        `envconfig:"OUTBOUND_APP_ID"`
	GAEAppID     string        `envconfig:"GAE_APPLICATION"`
	Deadline     time.Duration `envconfig:"OUTBOUND_DEADLINE"`
	Background   bool          `envconfig:"OUTBOUND_BACKGROUND"`
	Retries      int           `envconfig:"OUTBOUND_RETRIES"`
	RetryWaitMin time.Duration `envconfig:"OUTBOUND_RETRY_WAIT_MIN"`
	RetryWaitMax time.Duration `envconfig:"OUTBOUND_RETRY_WAIT_MAX"`
	Proxy        string        `envconfig:"OUTBOUND_PROXY"`
	tlsconf.Env                // the OUTBOUND_TLS_* variables
}

// Config converts e to a [Config].
func (e Env) Config() (Config, error) {
	tc, err := e.Env.Config()
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

// ConfigFromEnv reads the variables listed at [Env] and returns the Config
// they describe. A malformed value is an error that names the variable.
func ConfigFromEnv() (Config, error) {
	var e Env
	if err := envconfig.Process("", &e); err != nil {
		return Config{}, fmt.Errorf("transport: reading the environment: %w", err)
	}
	return e.Config()
}

// FromEnv builds a Config from the environment and calls New.
// GAE_USE_SOCKETS_HTTPLIB present, with any value including "", selects
// Sockets; absent selects URLFetch. See [Env] for every variable.
func FromEnv() (*Transport, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
