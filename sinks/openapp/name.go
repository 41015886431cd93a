package openapp

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/keysync/keysync/reconcile"
)

// tagPrefix opens the owner tag in an invite's name.
const tagPrefix = "[keysync:"

// maxGuestRunes caps the guest's name in an invite name.
const maxGuestRunes = 60

// OwnerTag is the mark keysync puts at the end of the name of every invite
// it creates: "[keysync:<property>:<source>:<stay id>]", each part with
// '%', ':', '[', ']', spaces and control characters percent-encoded.
// OpenApp invites have no owner field; the tag lets people and tools tell
// keysync's invites from others and find the stay one belongs to.
func OwnerTag(ref reconcile.StayRef) string {
	return tagPrefix + escapeTag(ref.Property) + ":" + escapeTag(string(ref.Source)) + ":" + escapeTag(ref.ID) + "]"
}

// ParseOwnerTag finds the last owner tag in an invite name and returns the
// stay it names; false when there is none or it is malformed.
func ParseOwnerTag(name string) (reconcile.StayRef, bool) {
	i := strings.LastIndex(name, tagPrefix)
	if i < 0 {
		return reconcile.StayRef{}, false
	}
	body, _, ok := strings.Cut(name[i+len(tagPrefix):], "]")
	if !ok {
		return reconcile.StayRef{}, false
	}
	parts := strings.Split(body, ":")
	if len(parts) != 3 {
		return reconcile.StayRef{}, false
	}
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil || v == "" {
			return reconcile.StayRef{}, false
		}
		parts[i] = v
	}
	return reconcile.StayRef{Property: parts[0], Source: reconcile.System(parts[1]), ID: parts[2]}, true
}

func escapeTag(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || c == '%' || c == ':' || c == '[' || c == ']' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// inviteName is the human part of an invite's name followed by the owner
// tag: "Anna Novak 2026-06-01→06-05 [keysync:hotel:3rpms:RS1]", or
// "Guest stay …" when the source gives no guest name.
func inviteName(a *reconcile.Action, ref reconcile.StayRef) string {
	who := guestName(a.Guest)
	if who == "" {
		who = "Guest stay"
	}
	from, to := a.Arrival, a.Departure
	if (from.IsZero() || to.IsZero()) && a.Window != nil {
		from, to = reconcile.DateOf(a.Window.Start.UTC()), reconcile.DateOf(a.Window.End.UTC())
	}
	dates := ""
	switch {
	case from.IsZero() || to.IsZero():
	case from.Year == to.Year:
		dates = fmt.Sprintf(" %s→%02d-%02d", from, to.Month, to.Day)
	default:
		dates = fmt.Sprintf(" %s→%s", from, to)
	}
	return who + dates + " " + OwnerTag(ref)
}

// guestName tidies a guest's name for an invite name: single spaces, no
// control characters or brackets (which could imitate a tag), at most
// maxGuestRunes runes.
func guestName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '[' || r == ']':
			return -1
		case unicode.IsControl(r) || unicode.IsSpace(r):
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxGuestRunes {
		s = strings.TrimSpace(string(r[:maxGuestRunes]))
	}
	return s
}
