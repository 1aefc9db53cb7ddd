// Package filestore keeps an authrefresh token in a file: written 0600
// through a temporary file, fsync and rename, so a crash leaves the old
// token or the new one, never half of either; refused when others can read
// it; locked (flock) around a refresh, so that every process sharing the
// file refreshes once between them; and, with a seal.Keyring, sealed so
// that a copy of the file holds no usable token.
//
// KeyFileName names one file per key (a keyed.Manager's users) in one
// directory, safely whatever the key holds.
package filestore
