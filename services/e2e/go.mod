module github.com/switchyardhq/switchyard/services/e2e

go 1.26
