package main

import (
	"context"
	"errors"
)

// Placeholder until the sandbox package lands in this tree.
func (env *environment) demo(ctx context.Context, args []string) error {
	return errors.New("demo: not wired yet")
}

func (env *environment) sandbox(ctx context.Context, args []string) error {
	return errors.New("sandbox: not wired yet")
}
