// Package nginx runs Debian's nginx as a child process in front of one
// upstream, configured the way "throttling and banning" is done today: a
// per-IP limit_req, a deny list, and upstream keep-alive. The lab's baseline
// and the benchmark use it to compare warden with that practice.
//
// It writes its config, pid and temp files only under the directory it is
// given, listens only where told (loopback in the lab), and never touches
// the system's nginx configuration or a running system nginx.
package nginx
