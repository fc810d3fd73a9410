package dashboard

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/assistiv/gateway/internal/money"
)

// overviewDays is how many days the Overview charts cover.
const overviewDays = 14

// overviewMaxCalls bounds the log entries one Overview reads (20 pages of
// the logs API's maximum); past it the page says its figures are partial.
const overviewMaxCalls = 20 * 500

type ranked struct {
	Name  string
	Label string // the end-user's external id, for end-users
	Spend money.Nanos
	Calls int64
}

type overviewData struct {
	Wallet        walletJSON
	SpendToday    money.Nanos
	SpendMonth    money.Nanos
	CallsMonth    int64
	ErrorsMonth   int64
	Refusals      int64
	TopModels     []ranked
	TopUsers      []ranked
	Charts        []chart
	Partial       bool
	Empty         bool
	HasEndUsers   bool
	HasProviders  bool
	MonthStartUTC string
}

func (d *Dashboard) overview(r *req) error {
	now := d.clock.Now().UTC()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	days, labels := dayLabels(now, overviewDays)
	from := days[0]
	if monthStart.Before(from) {
		from = monthStart
	}
	data := overviewData{MonthStartUTC: monthStart.Format(time.RFC3339)}
	as := platformCaller(r.pid)
	if err := d.get(as, platPath(r, "/wallet"), nil, &data.Wallet); err != nil {
		return err
	}
	entries, partial, err := d.logsSince(r, from)
	if err != nil {
		return err
	}
	data.Partial = partial
	data.Empty = len(entries) == 0
	var users listOf[endUserJSON]
	if err := d.get(as, platPath(r, "/end-users"), url.Values{"limit": {"1"}}, &users); err == nil {
		data.HasEndUsers = len(users.Data) > 0
	}
	var provs listOf[providerJSON]
	if err := d.get(operatorCaller(), adminPath(r, "/llm-providers"), nil, &provs); err == nil {
		data.HasProviders = len(provs.Data) > 0
	}

	idx := map[time.Time]int{}
	for i, t := range days {
		idx[t] = i
	}
	byModel, byUser := map[string][]int64{}, map[string][]int64{}
	totModel, totUser := map[string]*ranked{}, map[string]*ranked{}
	calls, errs, refusals := make([]int64, len(days)), make([]int64, len(days)), make([]int64, len(days))
	today := days[len(days)-1]
	for _, e := range entries {
		day, ok := dayUTC(e.CreatedAt)
		if !ok {
			continue
		}
		if !day.Before(monthStart) {
			data.SpendMonth += e.CostUSD
			data.CallsMonth++
			if e.StatusCode >= 400 {
				data.ErrorsMonth++
			}
			if e.StatusCode == 429 {
				data.Refusals++
			}
			add(totModel, e.Model, e.CostUSD)
			add(totUser, e.EndUserID, e.CostUSD)
		}
		if day.Equal(today) {
			data.SpendToday += e.CostUSD
		}
		i, ok := idx[day]
		if !ok {
			continue
		}
		calls[i]++
		if e.StatusCode >= 400 {
			errs[i]++
		}
		if e.StatusCode == 429 {
			refusals[i]++
		}
		bump(byModel, e.Model, i, int64(e.CostUSD))
		bump(byUser, e.EndUserID, i, int64(e.CostUSD))
	}
	data.TopModels, data.TopUsers = top(totModel, 5), top(totUser, 5)
	userSeries := topSeries(byUser, totUser, 5, len(days))
	var shown []string
	for _, u := range data.TopUsers {
		shown = append(shown, u.Name)
	}
	for _, s := range userSeries {
		shown = append(shown, s.Name)
	}
	names := d.externalIDs(r, shown)
	for i := range data.TopUsers {
		data.TopUsers[i].Label = names[data.TopUsers[i].Name]
	}
	for i := range userSeries {
		if n, ok := names[userSeries[i].Name]; ok {
			userSeries[i].Name = n
		}
	}
	usdFmt := func(v int64) string { return usdText(money.Nanos(v)) }
	count := func(v int64) string { return strconv.FormatInt(v, 10) }
	data.Charts = []chart{
		{ID: "c-model", Title: "Spend per day by model (UTC days)", Labels: labels, Series: topSeries(byModel, totModel, 5, len(days)), Format: usdFmt},
		{ID: "c-user", Title: "Spend per day by end-user (UTC days)", Labels: labels, Series: userSeries, Format: usdFmt},
		{ID: "c-calls", Title: "Calls and errors per day", Labels: labels, Series: []series{{"calls", calls}, {"errors", errs}}, Format: count, Line: true},
		{ID: "c-429", Title: "Rate-limit refusals (429) per day", Labels: labels, Series: []series{{"refusals", refusals}}, Format: count},
	}
	if c, ok := d.balanceChart(r, days, labels); ok {
		data.Charts = append(data.Charts, c)
	}
	return r.render("overview", "Overview", "overview", data)
}

func add(m map[string]*ranked, k string, v money.Nanos) {
	if k == "" {
		k = "(none)"
	}
	if m[k] == nil {
		m[k] = &ranked{Name: k}
	}
	m[k].Spend += v
	m[k].Calls++
}

func bump(m map[string][]int64, k string, i int, v int64) {
	if k == "" {
		k = "(none)"
	}
	if m[k] == nil {
		m[k] = make([]int64, overviewDays)
	}
	m[k][i] += v
}

func top(m map[string]*ranked, n int) []ranked {
	out := make([]ranked, 0, len(m))
	for _, r := range m {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Spend != out[j].Spend {
			return out[i].Spend > out[j].Spend
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// topSeries keeps the n-1 biggest keys by spend and folds the rest into
// "other".
func topSeries(by map[string][]int64, tot map[string]*ranked, n, days int) []series {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := sum(by[keys[i]]), sum(by[keys[j]])
		if a != b {
			return a > b
		}
		return keys[i] < keys[j]
	})
	var out []series
	other := make([]int64, days)
	for i, k := range keys {
		if i < n-1 || len(keys) == n {
			out = append(out, series{k, by[k]})
			continue
		}
		for j, v := range by[k] {
			other[j] += v
		}
	}
	if len(keys) > n {
		out = append(out, series{"other", other})
	}
	if len(out) == 0 {
		out = []series{{"no calls", make([]int64, days)}}
	}
	return out
}

func sum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// logsSince pages the logs API back to from, newest first, up to
// overviewMaxCalls entries.
func (d *Dashboard) logsSince(r *req, from time.Time) ([]logJSON, bool, error) {
	var out []logJSON
	q := url.Values{"limit": {"500"}, "start": {from.Format(time.RFC3339)}}
	for len(out) < overviewMaxCalls {
		var l listOf[logJSON]
		if err := d.get(platformCaller(r.pid), platPath(r, "/logs"), q, &l); err != nil {
			return nil, false, err
		}
		out = append(out, l.Data...)
		if l.NextCursor == nil {
			return out, false, nil
		}
		q.Set("cursor", *l.NextCursor)
	}
	return out, true, nil
}

// balanceChart is the wallet balance at the end of each day, from the
// wallet's ledger (its latest 1000 entries).
func (d *Dashboard) balanceChart(r *req, days []time.Time, labels []string) (chart, bool) {
	var l listOf[txJSON]
	if err := d.get(operatorCaller(), adminPath(r, "/wallet/transactions"), url.Values{"limit": {"1000"}}, &l); err != nil || len(l.Data) == 0 {
		return chart{}, false
	}
	vals := make([]int64, len(days))
	// Entries are newest first: walk oldest first, carrying the balance.
	var bal int64
	j := len(l.Data) - 1
	for i, day := range days {
		end := day.AddDate(0, 0, 1)
		for ; j >= 0; j-- {
			t, err := time.Parse(time.RFC3339Nano, l.Data[j].CreatedAt)
			if err != nil || !t.Before(end) {
				break
			}
			bal = int64(l.Data[j].BalanceAfterUSD)
		}
		vals[i] = bal
	}
	return chart{ID: "c-wallet", Title: "Wallet balance at the end of each day", Labels: labels, Series: []series{{"balance", vals}},
		Format: func(v int64) string { return usdText(money.Nanos(v)) }, Line: true}, true
}

// externalIDs maps end-user ids to their external ids (the names platform
// admins know them by), through the API; unknown or deleted ids map to
// themselves.
func (d *Dashboard) externalIDs(r *req, endUsers []string) map[string]string {
	out := map[string]string{}
	for _, id := range endUsers {
		if _, done := out[id]; done || !strings.HasPrefix(id, "eu_") {
			continue
		}
		out[id] = id
		var eu endUserJSON
		if d.get(platformCaller(r.pid), platPath(r, "/end-users/"+pathSeg(id)), nil, &eu) == nil && eu.ExternalID != "" {
			out[id] = eu.ExternalID
		}
	}
	return out
}
