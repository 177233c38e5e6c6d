package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// mintToken signs an HS256 JWT with the lab's claims (sub, iat, created),
// as the lab platform contract says anyone with the secret may.
func mintToken(secret []byte, sub string, created, iat time.Time) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(struct {
		Sub     string `json:"sub"`
		Iat     int64  `json:"iat"`
		Created int64  `json:"created"`
	}{sub, iat.Unix(), created.Unix()})
	msg := head + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(m.Sum(nil))
}
