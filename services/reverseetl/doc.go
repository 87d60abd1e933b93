// Package reverseetl will hold the Reverse ETL service: SQL models over a
// warehouse, diffed on a schedule, with the changed rows sent to
// destinations. Only its contract exists so far
// (proto/switchyard/reverseetl/v1); its own issue builds the service.
package reverseetl
