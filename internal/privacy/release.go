package privacy

// Interval is a released figure with its confidence interval.
type Interval struct {
	Low  int64 `json:"low"`
	High int64 `json:"high"`
}

// Note says how an answer was made private; it goes with every answer.
type Note struct {
	Mechanism   string  `json:"mechanism"`
	Parameter   string  `json:"parameter"`
	Person      string  `json:"person"`      // who one person is: an account, an ip
	Sensitivity string  `json:"sensitivity"` // in words, with L1 and L2
	Cells       int     `json:"cells"`       // the histogram's cells, each noised once
	Confidence  float64 `json:"confidence"`
	Guarantee   string  `json:"guarantee"`
}

// Histogram is an answer's cells: every person counted sits in exactly
// one cell, so one person changes one cell by one (L1 = L2 = 1). Figures
// are sums of cells.
type Histogram struct {
	m     Mechanism
	noisy []int64
	hw    map[int]int64
}

// Release draws independent noise for each cell of exact, in order. The
// exact counts are not kept.
func (m Mechanism) Release(src Source, exact []int64) (*Histogram, error) {
	h := &Histogram{m: m, noisy: make([]int64, len(exact)), hw: map[int]int64{}}
	for i, x := range exact {
		n, err := m.Noise(src)
		if err != nil {
			return nil, err
		}
		h.noisy[i] = x + n
	}
	return h, nil
}

// Figure is the sum of the cells for which in is true, floored at zero
// (a count is never negative; flooring is post-processing and keeps the
// interval's coverage), with its interval.
func (h *Histogram) Figure(in func(cell int) bool) (int64, Interval) {
	var sum int64
	n := 0
	for i, v := range h.noisy {
		if in(i) {
			sum += v
			n++
		}
	}
	return h.figure(sum, n)
}

// figure is the figure of a sum of n noisy cells, floored, with its
// interval.
func (h *Histogram) figure(sum int64, n int) (int64, Interval) {
	w, ok := h.hw[n]
	if !ok {
		w = h.m.HalfWidth(n)
		h.hw[n] = w
	}
	iv := Interval{Low: max(0, sum-w), High: max(0, sum+w)}
	return max(0, sum), iv
}

// AtLeast is the figures "the cells whose key is at least k", for k from
// 1 to kMax, as Figure gives each (a cell whose key is past kMax is in
// every one; ok false: in none): one pass and suffix sums, where a
// Figure per k reads every cell K times (a --dose of 100,000 authors).
func (h *Histogram) AtLeast(key func(cell int) (k int, ok bool), kMax int) ([]int64, []Interval) {
	if kMax < 1 {
		return nil, nil
	}
	sums := make([]int64, kMax+1)
	ns := make([]int, kMax+1)
	for i, v := range h.noisy {
		k, ok := key(i)
		if !ok || k < 1 {
			continue
		}
		k = min(k, kMax)
		sums[k] += v
		ns[k]++
	}
	vals, ivs := make([]int64, kMax), make([]Interval, kMax)
	var sum int64
	n := 0
	for k := kMax; k >= 1; k-- {
		sum += sums[k]
		n += ns[k]
		vals[k-1], ivs[k-1] = h.figure(sum, n)
	}
	return vals, ivs
}

// Note describes the release, of a person's part of d.
func (h *Histogram) Note(person string, d Data) Note {
	return Note{
		Mechanism: h.m.Name(), Parameter: h.m.Param(), Person: person,
		Sensitivity: "one " + person + " sits in one cell of the answer's histogram: adding or removing them, with " + d.Of + " of theirs, changes one cell by one (L1 = L2 = 1); each figure is a sum of cells",
		Cells:       len(h.noisy), Confidence: Confidence, Guarantee: h.m.Guarantee(person, d),
	}
}
