module github.com/switchyardhq/switchyard/services/reverseetl

go 1.26
