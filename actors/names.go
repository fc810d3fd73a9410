package actors

import (
	"strconv"
	"strings"

	"github.com/assistiv/gateway/internal/ids"
)

// actorName is the protoactor name of activation gen of id:
//
//	eu/<platform>/<end-user>#<gen>.<len(platform)>
//	plat/<platform>#<gen>.<len(platform)>
//
// It reads as the identity in logs, and [identityOf] recovers the identity
// from it whatever the ids contain: the activation's Props are shared by
// every actor of a kind (one Props per actor costs ~240 bytes of every
// resident actor), so an actor learns who it is from its own PID, after a
// restart too.
func actorName(id Identity, gen uint64) string {
	return id.String() + "#" + strconv.FormatUint(gen, 36) + "." + strconv.Itoa(len(id.Platform))
}

// identityOf parses a name made by actorName. The identity's strings are
// substrings of name: an actor's identity costs no memory of its own.
func identityOf(name string) (Identity, bool) {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return Identity{}, false
	}
	n, err := strconv.Atoi(name[dot+1:])
	hash := strings.LastIndexByte(name[:dot], '#')
	if err != nil || hash < 0 || n < 0 {
		return Identity{}, false
	}
	rest := name[:hash]
	switch {
	case strings.HasPrefix(rest, "eu/"):
		rest = rest[len("eu/"):]
		if len(rest) < n+1 || rest[n] != '/' {
			return Identity{}, false
		}
		return EndUserActor(ids.PlatformID(rest[:n]), ids.EndUserID(rest[n+1:])), true
	case strings.HasPrefix(rest, "plat/"):
		rest = rest[len("plat/"):]
		if len(rest) != n {
			return Identity{}, false
		}
		return PlatformActor(ids.PlatformID(rest)), true
	}
	return Identity{}, false
}
