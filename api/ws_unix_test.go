//go:build unix

package api_test

import (
	"context"
	"net"
	"net/http"
	"syscall"
)

// smallReceiveBufferClient dials with a 16 KiB socket receive buffer, so
// that a client that does not read is felt by the server after a few
// writes, not after the tens of megabytes an autotuned buffer takes.
func smallReceiveBufferClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}
