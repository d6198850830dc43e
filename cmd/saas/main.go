// Command saas is the one binary of the system: every role (api, push,
// relay, workers) and every operator command is a subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tenantworks/saas/pkg/domain"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// run builds the command tree and executes it; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root, a := newRootCmd(stdout, stderr)
	defer a.close()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// Exit codes: 1 for an unexpected failure or a file of bad data (an
// import's), 2 for bad usage or input, 3 for a
// conflict, 4 for something not found, 5 for a dependency that is down.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var usage usageError
	if errors.As(err, &usage) {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	var data dataError
	if errors.As(err, &data) {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	code := domain.ErrorCode(err)
	msg := err.Error()
	if d := domain.ErrorDetails(err); len(d) > 0 {
		msg = fmt.Sprintf("%s %v", msg, d)
	}
	fmt.Fprintln(stderr, "error:", msg)
	switch code {
	case domain.EINVALID:
		return 2
	case domain.ECONFLICT:
		return 3
	case domain.ENOTFOUND:
		return 4
	case domain.EUNAVAILABLE:
		return 5
	}
	return 1
}

// usageError marks errors in how a command was called.
type usageError struct{ error }
