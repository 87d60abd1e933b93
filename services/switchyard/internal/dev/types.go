package dev

import (
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
)

type (
	runtimeMux = runtime.ServeMux
	grpcConn   = grpc.ClientConn
)
