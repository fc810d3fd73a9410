package actors

import "github.com/assistiv/gateway/internal/pb"

// InheritLimit in a field of an end-user's rate-limit override means the
// field is not overridden: the platform default applies, and follows it
// when it changes. 0 keeps its meaning "no limit" (an explicit lift), so
// overrides stored before fields could be inherited read as before.
const InheritLimit int64 = -1

// noLimits is what mergeLimits answers when neither the end-user nor the
// platform sets a limit. Read-only.
var noLimits = &pb.RateLimits{}

// mergeLimits returns the limits in effect: each field of override that is
// not [InheritLimit] (and not negative), else the platform default's.
// A nil override inherits every field; nil defaults mean no limits.
// Without an override it returns defaults itself, or with neither a
// shared empty value (read-only both: no caller changes the result, and
// an admission allocates nothing for them).
func mergeLimits(override, defaults *pb.RateLimits) *pb.RateLimits {
	if override == nil {
		if defaults != nil {
			return defaults
		}
		return noLimits
	}
	out := &pb.RateLimits{}
	if defaults != nil {
		out.RequestsPerMinute, out.TokensPerMinute, out.RequestsPerDay = defaults.RequestsPerMinute, defaults.TokensPerMinute, defaults.RequestsPerDay
		out.MaxParallelRequests = defaults.MaxParallelRequests
	}
	pick := func(o int64, d *int64) {
		if o >= 0 {
			*d = o
		}
	}
	pick(override.RequestsPerMinute, &out.RequestsPerMinute)
	pick(override.TokensPerMinute, &out.TokensPerMinute)
	pick(override.RequestsPerDay, &out.RequestsPerDay)
	if override.MaxParallelRequests != nil {
		out.MaxParallelRequests = override.MaxParallelRequests
	}
	return out
}
