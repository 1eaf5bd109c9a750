// Command envtoggle shows how a deployment flips Outbound's HTTP backend: with
// the env_variables of app.yaml, as on App Engine.
//
// On App Engine the platform sets every variable listed under env_variables
// before the app starts, and transport.FromEnv reads them:
// GAE_USE_SOCKETS_HTTPLIB present, with any value, the empty string included,
// selects the sockets backend; absent, urlfetch. For a local run, where
// nobody sets them, this program reads the same app.yaml and sets the same
// variables itself, so a local run picks the backend production would. On
// App Engine (GAE_ENV is set) it leaves the environment alone.
//
//	go run ./examples/envtoggle -app examples/envtoggle/app.yaml
//
// prints "backend: sockets" for the app.yaml beside this file; delete its
// GAE_USE_SOCKETS_HTTPLIB line and it prints "backend: urlfetch".
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/transport"
)

func main() {
	log.SetFlags(0)
	appYAML := flag.String("app", "app.yaml", "path of the app's `app.yaml`")
	flag.Parse()
	if err := run(*appYAML, os.Stdout); err != nil {
		log.Fatal("envtoggle: ", err)
	}
}

// run applies the env_variables of the app.yaml at path when not on App
// Engine, then builds the transport from the environment and reports its
// backend.
func run(path string, out io.Writer) error {
	if os.Getenv("GAE_ENV") == "" { // App Engine sets GAE_ENV; a local run does not
		vars, err := envVariables(path)
		if err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			if err := os.Setenv(name, vars[name]); err != nil {
				return fmt.Errorf("setting %s from %s: %w", name, path, err)
			}
			fmt.Fprintf(out, "%s: %s=%s\n", path, name, strconv.Quote(vars[name]))
		}
	}
	value, present := os.LookupEnv(transport.EnvSockets)
	if present {
		fmt.Fprintf(out, "%s is set (to %s)\n", transport.EnvSockets, strconv.Quote(value))
	} else {
		fmt.Fprintf(out, "%s is not set\n", transport.EnvSockets)
	}

	rt, err := transport.FromEnv()
	if err != nil {
		return err
	}
	backend, ok := transport.BackendOf(rt)
	if !ok {
		return fmt.Errorf("transport.FromEnv returned a %T, which does not report its backend", rt)
	}
	fmt.Fprintf(out, "backend: %s\n", backend)
	return nil
}

// envVariables returns the env_variables map of the app.yaml at path. A
// variable listed with an empty quoted value is in the map with the value
// "": App Engine sets it, to the empty string.
func envVariables(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var app struct {
		EnvVariables map[string]string `yaml:"env_variables"`
	}
	if err := yaml.Unmarshal(data, &app); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return app.EnvVariables, nil
}
