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
	w, ok := h.hw[n]
	if !ok {
		w = h.m.HalfWidth(n)
		h.hw[n] = w
	}
	iv := Interval{Low: max(0, sum-w), High: max(0, sum+w)}
	return max(0, sum), iv
}

// Note describes the release, of a person's part of d.
func (h *Histogram) Note(person string, d Data) Note {
	return Note{
		Mechanism: h.m.Name(), Parameter: h.m.Param(), Person: person,
		Sensitivity: "one " + person + " sits in one cell of the answer's histogram: adding or removing them, with " + d.Of + " of theirs, changes one cell by one (L1 = L2 = 1); each figure is a sum of cells",
		Cells:       len(h.noisy), Confidence: Confidence, Guarantee: h.m.Guarantee(person, d),
	}
}
