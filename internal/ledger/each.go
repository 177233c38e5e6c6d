package ledger

import "runtime"

// Each calls fn with every Access of the window, partition by partition in
// time order and, within a partition, in the order they were recorded,
// until fn returns false. It decodes every partition it visits:
// for tools that read the whole ledger once (warden trace replays the
// canaries each list answer carried), not for the request path. A
// partition whose Accesses do not decode stops it: Err says which.
func (r *Reader) Each(fn func(*Entry) bool) {
	defer runtime.KeepAlive(r)
	r.eachErr = nil
	if err := r.load(); err != nil {
		r.eachErr = err
		return
	}
	for _, p := range r.parts {
		es, err := r.accesses(p)
		if err != nil {
			r.eachErr = err
			return
		}
		for i := range es {
			e := &es[i]
			if !r.win.has(e.t) {
				continue
			}
			if !fn(r.entryOf(e)) {
				return
			}
		}
	}
}
