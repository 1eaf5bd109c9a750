package lab

import (
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// The pattern selects exactly the named test at every level: -test.run
// splits on "/" and matches each element against the names of its level.
func TestRunPattern(t *testing.T) {
	for _, tc := range []struct {
		name    string
		want    string
		matches []string // names at each level that must match
		misses  []string // names that must not
	}{
		{"TestRealNet", "^TestRealNet$", []string{"TestRealNet"}, []string{"TestRealNetX", "XTestRealNet"}},
		{"TestX/a.b", "^TestX$/^a\\.b$", []string{"TestX", "a.b"}, []string{"aXb", "a.b2"}},
		{"TestX/case_(1)#01", "^TestX$/^case_\\(1\\)#01$", []string{"TestX", "case_(1)#01"}, []string{"case_(1)"}},
		{"TestX/a/b", "^TestX$/^a$/^b$", []string{"TestX", "a", "b"}, []string{"ab"}},
	} {
		got := runPattern(tc.name)
		if got != tc.want {
			t.Errorf("runPattern(%q) = %q, want %q", tc.name, got, tc.want)
		}
		elems := strings.Split(got, "/")
		for i, name := range tc.matches {
			if !regexp.MustCompile(elems[i]).MatchString(name) {
				t.Errorf("%q: element %q does not match %q", tc.name, elems[i], name)
			}
		}
		for _, name := range tc.misses {
			for _, e := range elems {
				if regexp.MustCompile(e).MatchString(name) {
					t.Errorf("%q: element %q matches %q", tc.name, e, name)
				}
			}
		}
	}
}

func TestResultOf(t *testing.T) {
	for _, tc := range []struct {
		line, name string
		want       childResult
		ok         bool
	}{
		{"--- PASS: TestX (0.01s)", "TestX", childPassed, true},
		{"    --- SKIP: TestX/a (0.00s)", "TestX/a", childSkipped, true},
		{"        --- FAIL: TestX/a/b (1.00s)", "TestX/a/b", childFailed, true},
		{"--- PASS: TestX (0.01s)", "TestX/a", childNotRun, false},
		{"--- PASS: TestXY (0.01s)", "TestX", childNotRun, false},
		{"    --- PASS: TestX/a (0.01s)", "TestX", childNotRun, false},
		{"=== RUN   TestX", "TestX", childNotRun, false},
		{"    log: --- PASS: TestX (0.01s)", "TestX", childNotRun, false},
	} {
		got, ok := resultOf(tc.line, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("resultOf(%q, %q) = %v, %v; want %v, %v", tc.line, tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// On Linux, one connection never accepted fills the accept queue of a
// listener with backlog 0: the kernel drops a SYN when more connections
// wait than the backlog (sk_acceptq_is_full). A kernel that counted an
// empty queue of length zero full would need none.
func TestBlackHoleFill(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("black holes are made on Linux only")
	}
	b, err := newBlackHole(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Logf("%d connection(s) filled the queue", len(b.filler))
	if len(b.filler) > 1 {
		t.Errorf("%d connections filled the queue, want 1 at most", len(b.filler))
	}
}
