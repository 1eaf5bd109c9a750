package main

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
)

// article is one article of the demonstration news server.
type article struct {
	Subject, From, Date string
}

// newsServer is a tiny news server on loopback for the demonstration and the
// tests: it speaks the part of NNTP (RFC 3977) that this example uses
// (GROUP, OVER and QUIT) for one newsgroup, and records the commands of each
// connection. It is safe for concurrent use.
type newsServer struct {
	ln       net.Listener
	group    string
	articles []article // article n is articles[n-1]
	wg       sync.WaitGroup
	// ended receives the number of each connection the client closed or
	// that ended (the first 16; later ones are dropped).
	ended chan int

	// mu guards the fields below.
	mu       sync.Mutex
	conns    map[net.Conn]bool
	sessions [][]string // the commands of each connection, in accept order
}

// startNewsServer serves group, holding articles, on a loopback port until
// Close.
func startNewsServer(group string, articles []article) (*newsServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &newsServer{ln: ln, group: group, articles: articles, conns: make(map[net.Conn]bool), ended: make(chan int, 16)}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the server's "127.0.0.1:port".
func (s *newsServer) Addr() string { return s.ln.Addr().String() }

// Sessions returns the commands each connection sent, one slice per
// connection.
func (s *newsServer) Sessions() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.sessions))
	for i, cmds := range s.sessions {
		out[i] = append([]string(nil), cmds...)
	}
	return out
}

// Close stops the server, closes every connection and waits for their
// goroutines to end.
func (s *newsServer) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *newsServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		s.conns[c] = true
		s.sessions = append(s.sessions, nil)
		id := len(s.sessions) - 1
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.converse(c, id)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
			select {
			case s.ended <- id:
			default:
			}
		}()
	}
}

// converse runs one connection: a greeting, then one reply per command.
func (s *newsServer) converse(c net.Conn, id int) {
	tc := textproto.NewConn(c)
	if tc.PrintfLine("201 news.example.com ready (no posting)") != nil {
		return
	}
	selected := false
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.sessions[id] = append(s.sessions[id], line)
		s.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "GROUP":
			if arg != s.group {
				err = tc.PrintfLine("411 no such newsgroup")
				break
			}
			selected = true
			err = tc.PrintfLine("211 %d 1 %d %s", len(s.articles), len(s.articles), s.group)
		case "OVER":
			if !selected {
				err = tc.PrintfLine("412 no newsgroup selected")
				break
			}
			err = s.over(tc, arg)
		case "QUIT":
			tc.PrintfLine("205 closing connection")
			return
		default:
			err = tc.PrintfLine("500 unknown command")
		}
		if err != nil {
			return
		}
	}
}

// over answers OVER low-high with the overview of those articles (RFC 3977,
// section 8.3): number, subject, from, date, message-id, references, bytes,
// lines, separated by tabs.
func (s *newsServer) over(tc *textproto.Conn, arg string) error {
	var low, high int
	if _, err := fmt.Sscanf(arg, "%d-%d", &low, &high); err != nil || low < 1 || high > len(s.articles) || low > high {
		return tc.PrintfLine("423 no articles in that range")
	}
	if err := tc.PrintfLine("224 overview information follows"); err != nil {
		return err
	}
	w := tc.DotWriter()
	for n := low; n <= high; n++ {
		a := s.articles[n-1]
		if _, err := fmt.Fprintf(w, "%d\t%s\t%s\t%s\t<%d@news.example.com>\t\t%d\t%d\n", n, a.Subject, a.From, a.Date, n, 100+n, 5); err != nil {
			return err
		}
	}
	return w.Close()
}
