package persistence

import "encoding/binary"

// Record families: the first byte of every key.
const (
	FamilyMeta        byte = 0x01
	FamilyChangefeed  byte = 0x02
	FamilyPlatform    byte = 0x10
	FamilyKey         byte = 0x11
	FamilyPlatKeys    byte = 0x12
	FamilyEndUser     byte = 0x13
	FamilyExternal    byte = 0x14
	FamilyLedger      byte = 0x15
	FamilyIdempotency byte = 0x16
	FamilyReservation byte = 0x17
	FamilyUserKeys    byte = 0x18
)

// SchemaVersion is the layout version this code reads and writes.
const SchemaVersion = 1

// MetaSchemaKey holds the schema version of a data dir.
var MetaSchemaKey = MetaKey("schema_version")

// MetaKey returns the key of a meta value.
func MetaKey(name string) []byte { return join(FamilyMeta, name) }

func join(family byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n+8)
	b = append(b, family)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// PlatformKey is the key of a platform record.
func PlatformKey(platformID string) []byte { return join(FamilyPlatform, platformID) }

// APIKeyKey is the key of an API key record, by digest.
func APIKeyKey(digest []byte) []byte { return append([]byte{FamilyKey}, digest...) }

// PlatformKeyIndex is the key of a platform key's index entry.
func PlatformKeyIndex(platformID, keyID string) []byte {
	return join(FamilyPlatKeys, platformID, keyID)
}

// PlatformKeysPrefix is the prefix of all of a platform's key index entries.
func PlatformKeysPrefix(platformID string) []byte {
	return append(join(FamilyPlatKeys, platformID), 0)
}

// UserKeyIndex is the key of an end-user key's index entry.
func UserKeyIndex(platformID, endUserID, keyID string) []byte {
	return join(FamilyUserKeys, platformID, endUserID, keyID)
}

// UserKeysPrefix is the prefix of all of an end-user's key index entries.
func UserKeysPrefix(platformID, endUserID string) []byte {
	return append(join(FamilyUserKeys, platformID, endUserID), 0)
}

// EndUserKey is the key of an end-user record.
func EndUserKey(platformID, endUserID string) []byte {
	return join(FamilyEndUser, platformID, endUserID)
}

// EndUsersPrefix is the prefix of all of a platform's end-user records.
func EndUsersPrefix(platformID string) []byte { return append(join(FamilyEndUser, platformID), 0) }

// ExternalKey is the key of the external_id → end-user id index.
func ExternalKey(platformID, externalID string) []byte {
	return join(FamilyExternal, platformID, externalID)
}

// LedgerPrefix is the prefix of one account's ledger entries.
func LedgerPrefix(platformID, account string) []byte {
	return append(join(FamilyLedger, platformID, account), 0)
}

// LedgerKey is the key of one ledger entry.
func LedgerKey(platformID, account string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(LedgerPrefix(platformID, account), seq)
}

// IdempotencyKey is the key of an idempotency record, scoped to (platform,
// account, route).
func IdempotencyKey(platformID, account, route, key string) []byte {
	return join(FamilyIdempotency, platformID, account, route, key)
}

// IdempotencyPrefix is the prefix of one account's idempotency records.
func IdempotencyPrefix(platformID, account string) []byte {
	return append(join(FamilyIdempotency, platformID, account), 0)
}

// ReservationKey is the key of an open reservation.
func ReservationKey(platformID, account, reservationID string) []byte {
	return join(FamilyReservation, platformID, account, reservationID)
}

// ReservationPrefix is the prefix of one account's open reservations.
func ReservationPrefix(platformID, account string) []byte {
	return append(join(FamilyReservation, platformID, account), 0)
}

// ChangefeedKey is the key of one commit's changefeed record.
func ChangefeedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{FamilyChangefeed}, seq)
}

// PrefixEnd returns the smallest key greater than every key with prefix p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// FamilyWindows holds an end-user's rate windows, saved when its actor
// passivates: 0x19 platformID 0x00 endUserID → encoded windows.
const FamilyWindows byte = 0x19

// WindowsKey is the key of an end-user's saved rate windows.
func WindowsKey(platformID, endUserID string) []byte {
	return join(FamilyWindows, platformID, endUserID)
}

// ChargeKey is the key of a recorded offline payment charge.
func ChargeKey(platformID, chargeID string) []byte {
	return join(FamilyMeta, "charge", platformID, chargeID)
}

// FamilyOutbox holds webhook events written in the same commit as their
// cause: 0x20 platformID 0x00 eventID → the event's JSON payload. The
// webhooks dispatcher fans each out to subscribed endpoints and deletes it.
const FamilyOutbox byte = 0x20

// OutboxKey is the key of one outbox event.
func OutboxKey(platformID, eventID string) []byte { return join(FamilyOutbox, platformID, eventID) }
