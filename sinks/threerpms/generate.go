package threerpms

//go:generate go tool genqlient genqlient.yaml
