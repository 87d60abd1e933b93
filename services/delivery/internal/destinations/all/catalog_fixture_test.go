package all_test

import (
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/switchyardhq/switchyard/services/delivery/internal/destinations"
)

var updateFixture = flag.Bool("update", false, "rewrite Catalog's fixture of Delivery's destination types")

// catalogFixture is where Catalog's test reads Delivery's destination types
// (services/catalog/internal/catalog/testdata): Catalog's integration
// catalog must list exactly these types and settings.
const catalogFixture = "../../../../catalog/internal/catalog/testdata/delivery_destination_types.json"

// fixtureSetting and fixtureType are the compared part of a type: the
// slug, the category and every setting's name, type, flags, default and
// choices (descriptions may differ).
type fixtureSetting struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Required bool     `json:"required"`
	Secret   bool     `json:"secret"`
	Default  any      `json:"default"`
	Choices  []string `json:"choices"`
}

type fixtureType struct {
	Slug     string           `json:"slug"`
	Category string           `json:"category"`
	Settings []fixtureSetting `json:"settings"`
}

func registryFixture(t *testing.T) []byte {
	t.Helper()
	var out []fixtureType
	for _, typ := range destinations.All() {
		ft := fixtureType{Slug: typ.Slug, Category: typ.Category}
		for _, s := range typ.Settings {
			ft.Settings = append(ft.Settings, fixtureSetting{Name: s.Name, Type: s.Type, Required: s.Required, Secret: s.Secret, Default: s.Default, Choices: s.Choices})
		}
		slices.SortFunc(ft.Settings, func(a, b fixtureSetting) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, ft)
	}
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(raw, '\n')
}

// TestCatalogFixtureIsCurrent fails when Delivery's registry changed and
// Catalog's fixture was not regenerated (go test ./internal/destinations/all
// -run CatalogFixture -update); Catalog's TestDestinationCatalogMatchesDelivery
// then fails until Catalog's schemas agree.
func TestCatalogFixtureIsCurrent(t *testing.T) {
	want := registryFixture(t)
	if *updateFixture {
		if err := os.WriteFile(catalogFixture, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(catalogFixture)
	if err != nil {
		t.Fatalf("read Catalog's fixture: %v (regenerate with -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is stale: Delivery's registry changed; run go test ./internal/destinations/all -run CatalogFixture -update and make Catalog's integrations.go agree\ngot:\n%s\nwant:\n%s", catalogFixture, got, want)
	}
}
