package urlfetch_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: every
// exchange, dial and body reader must have an exit.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
