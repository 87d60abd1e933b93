// Package e2e holds Switchyard's black-box end-to-end tests: they build the
// all-in-one binary, run `switchyard dev` as a subprocess on a temporary data
// dir, send events through the real Segment Node SDK (sdk/send.mjs) and check
// them at a webhook destination and in the embedded warehouse. See README.md.
package e2e
