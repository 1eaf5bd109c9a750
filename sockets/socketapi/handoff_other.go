//go:build !linux

package socketapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
)

// Hand-off between processes is implemented on Linux only (it needs
// SO_PEERCRED and SCM_RIGHTS); elsewhere Listen and DetachTo fail with
// errors.ErrUnsupported, and in-process hand-off works as everywhere.

var errNoProcHandOff = fmt.Errorf("socketapi: socket hand-off between processes on %s: %w", runtime.GOOS, errors.ErrUnsupported)

const oobSize = 0

func listenRegistry(string) (*net.UnixListener, os.FileInfo, error) {
	return nil, nil, errNoProcHandOff
}

func dialRegistry(context.Context, string) (*net.UnixConn, error) {
	return nil, errNoProcHandOff
}

func peerUID(*net.UnixConn) (int, error) { return 0, errNoProcHandOff }

func sendWithFD(*net.UnixConn, []byte, syscall.RawConn) error { return errNoProcHandOff }

func readWithFDs(*net.UnixConn, []byte, []byte) (int, []int, error) {
	return 0, nil, errNoProcHandOff
}

func adoptFD(int) (net.Conn, error) { return nil, errNoProcHandOff }

func closeFDs([]int) {}
