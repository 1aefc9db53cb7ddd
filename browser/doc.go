// Package browser holds the tests that drive a real Chromium (Debian's
// chromium, headless) through chromedp against the backend-for-frontend:
// the products app logs in through the reference server and calls its API
// with no token in the page, and a page of another origin cannot reach the
// API through it. It is a module of its own, so that the library gains no
// dependency on chromedp.
package browser
