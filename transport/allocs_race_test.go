//go:build race

package transport_test

// The race detector changes allocation counts: TestAllocBudgets then logs
// them and checks nothing.
func init() { raceEnabled = true }
