// Package e2e holds warden's end-to-end tests: they build the warden binary,
// start the real gateway process in front of the real lab platform (or a
// small upstream written for one behaviour, such as a slow or upgrading
// server), and talk HTTP to both on loopback. Nothing is mocked.
package e2e
