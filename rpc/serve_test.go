package rpc

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestServeUntil checks the server answers until its context ends, then
// shuts down cleanly: ServeUntil returns nil and the port refuses calls.
func TestServeUntil(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }), nil)
	done := make(chan error, 1)
	go func() { done <- ServeUntil(ctx, srv, ln, time.Second) }()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeUntil: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeUntil did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the port still accepts connections after shutdown")
	}
}
