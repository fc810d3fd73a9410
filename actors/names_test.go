package actors

import "testing"

// An actor's name gives back its identity whatever its ids contain, and a
// name the directory did not make gives none.
func TestActorNameCarriesTheIdentity(t *testing.T) {
	for _, id := range []Identity{
		PlatformActor("plat_01jabc"),
		EndUserActor("plat_01jabc", "eu_01jxyz"),
		EndUserActor("a/b#1.2", "c/d#3.4"),
		EndUserActor("", ""),
		PlatformActor("p.9#1"),
		EndUserActor("plat", "/eu/"),
	} {
		for _, gen := range []uint64{1, 36, 1 << 40} {
			name := actorName(id, gen)
			got, ok := identityOf(name)
			if !ok || got != id {
				t.Errorf("identityOf(%q) = %v, %v; want %v", name, got, ok, id)
			}
		}
	}
	for _, name := range []string{"", "eu/x#1", "plat/x#1.9", "eu/ab#1.5", "other/x#1.1", "eu/x/y#1.-1", "plat/x.1"} {
		if id, ok := identityOf(name); ok {
			t.Errorf("identityOf(%q) = %v, want none", name, id)
		}
	}
}
