module github.com/switchyardhq/switchyard/services/catalog

go 1.26.0

require (
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/nats-io/nkeys v0.4.17 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261110000943-09e21b237f2c // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261110000943-09e21b237f2c // indirect
)

require (
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.34.0
	github.com/nats-io/nats.go v1.56.0
	github.com/switchyardhq/switchyard/gen v0.0.0
	github.com/switchyardhq/switchyard/services/internal/platform v0.0.0
	golang.org/x/sync v0.25.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

replace (
	github.com/switchyardhq/switchyard/gen => ../../gen
	github.com/switchyardhq/switchyard/services/internal/platform => ../internal/platform
)
