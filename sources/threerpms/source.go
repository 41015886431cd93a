package threerpms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/Khan/genqlient/graphql"

	"github.com/keysync/keysync/reconcile"
)

// DefaultPageSize is the seed's page size (first: 20).
const DefaultPageSize = 20

// maxPages stops a server that keeps saying hasNextPage from holding a run
// forever: 100,000 stays at 20 a page.
const maxPages = 5000

// Source reads a property's room stays. It implements reconcile.StaySource.
type Source struct {
	gql      graphql.Client
	property string
	pageSize int
}

var _ reconcile.StaySource = (*Source)(nil)

// NewSource returns a Source for one property, reading pageSize stays per
// request (0 means DefaultPageSize).
func NewSource(gql graphql.Client, property string, pageSize int) *Source {
	return &Source{gql: gql, property: property, pageSize: cmp.Or(pageSize, DefaultPageSize)}
}

// Stays implements reconcile.StaySource with seed 003's RoomStays query:
// reservation_from le to and reservation_to gt from.
func (s *Source) Stays(ctx context.Context, from, to reconcile.Date) ([]reconcile.Stay, error) {
	return s.pages(ctx, func(cursor *string) ([]RoomStaySubset, RoomStaysRoom_staysRoomStayConnectionPageInfo, error) {
		resp, err := RoomStays(ctx, s.gql, from.String(), to.String(), s.pageSize, cursor)
		if err != nil {
			return nil, RoomStaysRoom_staysRoomStayConnectionPageInfo{}, err
		}
		if resp.Room_stays.Edges == nil {
			return nil, RoomStaysRoom_staysRoomStayConnectionPageInfo{}, errNoStays
		}
		nodes := make([]RoomStaySubset, len(resp.Room_stays.Edges))
		for i, e := range resp.Room_stays.Edges {
			nodes[i] = e.Node.RoomStaySubset
		}
		return nodes, resp.Room_stays.PageInfo, nil
	})
}

// StaysByID implements reconcile.StaySource with an id-in filter, as seed
// 003 does after a webhook. Stays 3RPMS no longer returns are left out.
func (s *Source) StaysByID(ctx context.Context, ids []string) ([]reconcile.Stay, error) {
	var out []reconcile.Stay
	for chunk := range slices.Chunk(ids, s.pageSize) {
		stays, err := s.pages(ctx, func(cursor *string) ([]RoomStaySubset, RoomStaysRoom_staysRoomStayConnectionPageInfo, error) {
			resp, err := RoomStaysByID(ctx, s.gql, chunk, s.pageSize, cursor)
			if err != nil {
				return nil, RoomStaysRoom_staysRoomStayConnectionPageInfo{}, err
			}
			if resp.Room_stays.Edges == nil {
				return nil, RoomStaysRoom_staysRoomStayConnectionPageInfo{}, errNoStays
			}
			nodes := make([]RoomStaySubset, len(resp.Room_stays.Edges))
			for i, e := range resp.Room_stays.Edges {
				nodes[i] = e.Node.RoomStaySubset
			}
			return nodes, RoomStaysRoom_staysRoomStayConnectionPageInfo(resp.Room_stays.PageInfo), nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, stays...)
	}
	return out, nil
}

// errNoStays is an answer without room_stays.edges, which the schema makes
// non-null: `{}`, `{"data":null}` and the like. Read as "no stays", it
// would revoke every key, so it is an error.
var errNoStays = errors.New("answer has no room_stays edges (data missing or null)")

type pageFunc func(cursor *string) ([]RoomStaySubset, RoomStaysRoom_staysRoomStayConnectionPageInfo, error)

// pages follows cursors until the last page.
func (s *Source) pages(ctx context.Context, page pageFunc) ([]reconcile.Stay, error) {
	var out []reconcile.Stay
	index := map[string]int{} // a stay listed twice is kept once, as last seen
	var cursor *string
	seen := map[string]bool{}
	for n := 1; ; n++ {
		nodes, info, err := page(cursor)
		if err != nil {
			return nil, fmt.Errorf("3rpms: room_stays page %d: %w", n, err)
		}
		for _, node := range nodes {
			st, err := s.stay(node)
			if err != nil {
				return nil, fmt.Errorf("3rpms: room_stays page %d: %w", n, err)
			}
			if i, dup := index[st.Ref.ID]; dup {
				out[i] = st
				continue
			}
			index[st.Ref.ID] = len(out)
			out = append(out, st)
		}
		if !info.HasNextPage {
			return out, nil
		}
		switch {
		case info.EndCursor == "":
			return nil, fmt.Errorf("3rpms: room_stays page %d: hasNextPage without an endCursor", n)
		case seen[info.EndCursor]:
			return nil, fmt.Errorf("3rpms: room_stays page %d: cursor repeats an earlier page", n)
		case n >= maxPages:
			return nil, fmt.Errorf("3rpms: room_stays: more than %d pages", maxPages)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("3rpms: room_stays page %d: %w", n, context.Cause(ctx))
		}
		seen[info.EndCursor] = true
		c := info.EndCursor
		cursor = &c
	}
}

// stay converts a wire stay to the domain's.
func (s *Source) stay(n RoomStaySubset) (reconcile.Stay, error) {
	if n.Id == "" {
		return reconcile.Stay{}, fmt.Errorf("room stay without an id")
	}
	// The errors do not quote the value: a server could put anything there.
	arr, err := reconcile.ParseDate(n.Arrival)
	if err != nil {
		return reconcile.Stay{}, fmt.Errorf("room stay %s: arrival is not a YYYY-MM-DD date", n.Id)
	}
	dep, err := reconcile.ParseDate(n.Departure)
	if err != nil {
		return reconcile.Stay{}, fmt.Errorf("room stay %s: departure is not a YYYY-MM-DD date", n.Id)
	}
	st := reconcile.Stay{
		Ref:       reconcile.StayRef{Property: s.property, Source: reconcile.System3RPMS, ID: n.Id},
		RoomID:    n.Room_setup.Id,
		RoomName:  n.Room_setup.Name,
		Arrival:   arr,
		Departure: dep,
	}
	if k := n.RoomAccessKey; k.ID != "" {
		st.Key = &reconcile.RemoteKey{ID: k.ID, Type: k.Typename, PIN: reconcile.Secret(k.PIN)}
	}
	return st, nil
}
