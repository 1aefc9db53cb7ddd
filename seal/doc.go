// Package seal encrypts tokens at rest: a Keyring seals each record with
// AES-256-GCM under its first key, bound to the record's name (a copy
// moved to another user's name does not open), and opens records sealed
// with any of its keys, so that keys rotate without a flag day. Stores
// (filestore, redisstore) take a Keyring as an option.
package seal
