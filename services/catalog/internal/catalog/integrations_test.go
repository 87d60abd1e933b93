package catalog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// deliverySetting and deliveryType are one entry of
// testdata/delivery_destination_types.json, which Delivery's
// TestCatalogFixtureIsCurrent generates from Delivery's registry
// (services/delivery/internal/destinations/all).
type deliverySetting struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Required bool     `json:"required"`
	Secret   bool     `json:"secret"`
	Default  any      `json:"default"`
	Choices  []string `json:"choices"`
}

type deliveryType struct {
	Slug     string            `json:"slug"`
	Category string            `json:"category"`
	Settings []deliverySetting `json:"settings"`
}

// TestDestinationCatalogMatchesDelivery fails when Catalog's destination
// types drift from Delivery's: the same slugs, categories and settings
// (name, type, required, secret, default, choices).
func TestDestinationCatalogMatchesDelivery(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("testdata", "delivery_destination_types.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []deliveryType
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	var got []deliveryType
	for _, m := range CatalogDestinations() {
		dt := deliveryType{Slug: m.GetSlug()}
		if len(m.GetCategories()) > 0 {
			dt.Category = m.GetCategories()[0]
		}
		for _, o := range m.GetOptions() {
			s := deliverySetting{Name: o.GetName(), Type: o.GetType(), Required: o.GetRequired(), Secret: o.GetSecret(), Choices: o.GetChoices()}
			if o.GetDefaultValue() != nil {
				s.Default = o.GetDefaultValue().AsInterface()
			}
			dt.Settings = append(dt.Settings, s)
		}
		slices.SortFunc(dt.Settings, func(a, b deliverySetting) int { return strings.Compare(a.Name, b.Name) })
		got = append(got, dt)
	}
	slices.SortFunc(got, func(a, b deliveryType) int { return strings.Compare(a.Slug, b.Slug) })
	// Compare through JSON so numbers and empty lists read the same.
	norm := func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		var x any
		_ = json.Unmarshal(b, &x)
		b, _ = json.MarshalIndent(x, "", "  ")
		return string(b)
	}
	gotSlugs, wantSlugs := []string{}, []string{}
	for _, g := range got {
		gotSlugs = append(gotSlugs, g.Slug)
	}
	for _, w := range want {
		wantSlugs = append(wantSlugs, w.Slug)
	}
	if !slices.Equal(gotSlugs, wantSlugs) {
		t.Fatalf("Catalog's destination types = %v, Delivery's = %v", gotSlugs, wantSlugs)
	}
	for i := range want {
		t.Run(want[i].Slug+" has Delivery's settings", func(t *testing.T) {
			if g, w := norm(got[i]), norm(want[i]); g != w {
				t.Errorf("Catalog's schema:\n%s\nDelivery's:\n%s", g, w)
			}
		})
	}
}
