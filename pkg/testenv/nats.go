package testenv

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is a private, real nats-server with JetStream, run in the test
// process so that a test can stop and restart it (fault injection) and has
// streams and consumers no other test sees.
type NATSServer struct {
	URL  string
	port int
	dir  string
	srv  *server.Server
}

// MustNATSServer starts a private NATS server with JetStream on a free
// loopback port, storing in a temporary folder; it stops with the test.
func MustNATSServer(tb testing.TB) *NATSServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n := &NATSServer{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), port: port, dir: tb.TempDir()}
	n.Start(tb)
	tb.Cleanup(n.Stop)
	return n
}

// Start (re)starts the server on its port with its stored data.
func (n *NATSServer) Start(tb testing.TB) {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		tb.Fatalf("testenv: nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("testenv: nats server did not start")
	}
	n.srv = srv
}

// Stop shuts the server down; clients see a lost connection.
func (n *NATSServer) Stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}
