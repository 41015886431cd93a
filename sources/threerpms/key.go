package threerpms

// RemoteKey is the wire shape of a stay's roomAccessKey, bound in
// queries.graphql in place of genqlient's interface type so that a key type
// added after keysync was built decodes instead of failing the page.
type RemoteKey struct {
	Typename string `json:"__typename"`
	ID       string `json:"id"`
	// PIN is set for RoomAccessPin and RoomAccessKeyStorage.
	PIN string `json:"pin"`
	// QRData is set for RoomAccessQR: what the guest's QR code encodes (a
	// key derived from an OpenApp invite: the guest's link).
	QRData string `json:"qrData"`
}
