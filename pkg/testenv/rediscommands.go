package testenv

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// RedisCommands is a go-redis hook (client.AddHook) that records the name
// of every command the client sends, scripts and pipelined ones included:
// how tests count a request's round trips to Redis.
type RedisCommands struct {
	mu    sync.Mutex
	names []string
}

// DialHook passes dials through.
func (l *RedisCommands) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook records one command.
func (l *RedisCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.mu.Lock()
		l.names = append(l.names, cmd.Name())
		l.mu.Unlock()
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook records a pipeline's commands.
func (l *RedisCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		l.mu.Lock()
		for _, c := range cmds {
			l.names = append(l.names, c.Name())
		}
		l.mu.Unlock()
		return next(ctx, cmds)
	}
}

// Take returns the names of the commands sent since the last Take, in
// order.
func (l *RedisCommands) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.names
	l.names = nil
	return out
}
