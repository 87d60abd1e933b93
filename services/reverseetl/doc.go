// Package reverseetl is the Reverse ETL service: SQL models over a
// warehouse, diffed inside the warehouse on a schedule, with the changed
// records published to the RETL stream for Delivery. See README.md; the
// service is assembled in app, the diffing lives in internal/diff.
package reverseetl
