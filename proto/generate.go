// Package proto holds the wire schema of grove's repair protocol. The Go code
// beside each .proto file is generated and committed; regenerate it with
//
//	go generate ./proto/...
//
// which runs buf and the protoc-gen-go and protoc-gen-connect-go plugins at
// pinned versions from the Go module proxy, so nothing has to be installed.
package proto

//go:generate go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate
