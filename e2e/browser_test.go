package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// artifacts is where the browser tests keep their screenshots
// (e2e/testdata/artifacts, ignored by git).
func artifacts(t *testing.T) string {
	dir := filepath.Join("testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless Chromium (Debian's) and collects what its
// console and runtime report as errors.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	exe := need(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 150*time.Second)
	t.Cleanup(func() { tcancel(); cancel(); acancel() })
	var mu sync.Mutex
	var errs []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			errs = append(errs, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				errs = append(errs, "console.error")
			}
		case *log.EventEntryAdded:
			// Network entries are answers' statuses (a refused sign-in is a
			// 401 by design); script, CSP and other errors count.
			if e.Entry.Level == log.LevelError && e.Entry.Source != log.SourceNetwork {
				errs = append(errs, "log: "+e.Entry.Text)
			}
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), errs...) }
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil { // 100: PNG
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(artifacts(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func location(t *testing.T, ctx context.Context) string {
	var u string
	if err := chromedp.Run(ctx, chromedp.Location(&u)); err != nil {
		t.Fatal(err)
	}
	return u
}

// The dashboard in a real browser: without the token nothing but the
// sign-in form and the transparency page; signed in, the now page's
// figures move while the lab sends traffic, a ban is added and removed,
// a reach query and an explain answer; at a phone's width nothing
// overflows; no JavaScript error anywhere.
func TestDashboardInBrowser(t *testing.T) {
	begin := time.Now()
	ctx, jsErrors := browser(t)
	l := startLab(t)
	base := l.g.admin
	refused := l.traffic(t, 0)

	// Without a session every page lands on the sign-in form.
	for _, p := range []string{"/", "/identities", "/bans", "/explain?id=" + refused, "/reach?authors=17", "/person?subject=10"} {
		if err := chromedp.Run(ctx, chromedp.Navigate(base+p), chromedp.WaitVisible(`#token`, chromedp.ByID)); err != nil {
			t.Fatalf("%s without a session: %v", p, err)
		}
		if u := location(t, ctx); u != base+"/login" {
			t.Fatalf("%s without a session: at %s, want /login", p, u)
		}
	}
	var text string
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/transparency"), chromedp.Text(`main`, &text)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "guarantee") || strings.Contains(text, "Sign out") {
		t.Fatalf("transparency without a session: %q", text)
	}
	shot(t, ctx, "transparency")

	// Sign in.
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/login"), chromedp.SendKeys(`#token`, "wrong-token-0123456789", chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID), chromedp.WaitVisible(`.error`), chromedp.Text(`.error`, &text)); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "login")
	if err := chromedp.Run(ctx, chromedp.SendKeys(`#token`, adminToken, chromedp.ByID), chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`#n-requests`, chromedp.ByID)); err != nil {
		t.Fatalf("sign in: %v", err)
	}

	// Live numbers move while the lab sends traffic.
	read := func() int {
		var s string
		if err := chromedp.Run(ctx, chromedp.Text(`#n-requests`, &s, chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(s))
		return n
	}
	before := read()
	moved := false
	for round := 1; round <= 8 && !moved; round++ {
		l.traffic(t, round)
		time.Sleep(2500 * time.Millisecond) // the page polls every 2 s
		moved = read() > before
	}
	if !moved {
		t.Fatalf("requests stayed at %d while the lab sent traffic", before)
	}
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#t-masks tbody tr td`), chromedp.Text(`#t-refusals`, &text)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "following-burst") {
		t.Errorf("refusals table: %q", text)
	}
	shot(t, ctx, "now")

	// Add a ban, see it with its reason, remove it.
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/bans"),
		chromedp.SetValue(`#ban-add select[name=facet]`, "ip"),
		chromedp.SendKeys(`#ban-add input[name=value]`, "10.66.77.88"),
		chromedp.SendKeys(`#ban-add input[name=reason]`, "browser test scraper"),
		chromedp.Submit(`#ban-add input[name=value]`),
		chromedp.WaitVisible(`.notice`), chromedp.Text(`#bans`, &text)); err != nil {
		t.Fatalf("add a ban: %v", err)
	}
	if !strings.Contains(text, "10.66.77.88") || !strings.Contains(text, "browser test scraper") {
		t.Fatalf("bans after add: %q", text)
	}
	if a := adminDo(t, l.g, "GET", "/v1/bans?facet=ip", ""); !strings.Contains(a.body, "10.66.77.88") {
		t.Fatalf("the store has no such ban: %s", a.body)
	}
	shot(t, ctx, "bans")
	if err := chromedp.Run(ctx, chromedp.Click(`//tr[td[text()="10.66.77.88"]]//button`, chromedp.BySearch),
		chromedp.WaitNotPresent(`//td[text()="10.66.77.88"]`, chromedp.BySearch), chromedp.Text(`.notice`, &text)); err != nil {
		t.Fatalf("remove the ban: %v", err)
	}
	if text != "Ban removed." {
		t.Fatalf("after remove: %q", text)
	}
	if a := adminDo(t, l.g, "GET", "/v1/bans?facet=ip", ""); strings.Contains(a.body, "10.66.77.88") {
		t.Fatalf("the store still has the ban: %s", a.body)
	}

	// Reach, with its dose and overlap charts.
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/reach"),
		chromedp.SendKeys(`#reach input[name=authors]`, "17,18"),
		chromedp.SendKeys(`#reach input[name=overlap]`, "19"),
		chromedp.Click(`#reach input[name=dose]`),
		chromedp.Submit(`#reach input[name=authors]`),
		chromedp.WaitVisible(`#reach-result`), chromedp.Text(`#reach-result`, &text)); err != nil {
		t.Fatalf("reach: %v", err)
	}
	if !strings.Contains(text, "people reached") || strings.Contains(text, "people reached\n0") {
		t.Fatalf("reach result: %q", text)
	}
	var charts int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("canvas.bars").length`, &charts)); err != nil || charts != 2 {
		t.Fatalf("reach charts: %d %v", charts, err)
	}
	shot(t, ctx, "reach")

	// Explain the refusal the lab's traffic got.
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/explain"), chromedp.SendKeys(`#explain input[name=id]`, refused),
		chromedp.Submit(`#explain input[name=id]`), chromedp.WaitVisible(`#decision`), chromedp.Text(`#decision`, &text)); err != nil {
		t.Fatalf("explain: %v", err)
	}
	if !strings.Contains(text, "refused") || !strings.Contains(text, "following-burst") {
		t.Fatalf("explain: %q", text)
	}
	shot(t, ctx, "explain")
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/identities"), chromedp.WaitVisible(`main table`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "identities")

	// A phone's width: nothing wider than the screen.
	for _, p := range []string{"/transparency", "/bans", "/reach?authors=17,18&dose=on", "/"} {
		var over bool
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := chromedp.Run(sctx, chromedp.Navigate(base+p), chromedp.WaitVisible(`main`, chromedp.ByQuery), chromedp.EmulateViewport(390, 844),
			chromedp.Sleep(200*time.Millisecond), chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &over))
		cancel()
		if err != nil {
			t.Fatalf("%s at a phone's width: %v", p, err)
		}
		if over {
			t.Errorf("%s overflows a phone's width", p)
		}
	}
	shot(t, ctx, "now-phone")
	t.Logf("browser steps took %s", time.Since(begin).Round(time.Millisecond))

	if errs := jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors in the console: %s", fmt.Sprint(errs))
	}
}
