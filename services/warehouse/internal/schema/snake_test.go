package schema

import (
	"strings"
	"testing"
)

func TestSnake(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		// Case wh-06.
		{"Product Name", "product_name"},
		{"product.category", "product_category"},
		{"utm-source", "utm_source"},
		{"Cízǔ", "c_z"},
		{"$price%", "price"},
		{"CamelCase123Key", "camel_case123_key"},
		{"Base64Encode", "base64_encode"},
		{"omega v2", "omega_v2"},
		{"iOS Version", "i_os_version"},
		{"A/B Test", "a_b_test"},
		// go-snakecase's own vectors.
		{"inviteYourCustomersAddInvites", "invite_your_customers_add_invites"},
		{"SAMPLE 2 TEXT", "sample_2_text"},
		{"something.com", "something_com"},
		{"sample text", "sample_text"},
		{"sample-text", "sample_text"},
		{"sample_text", "sample_text"},
		{"sample___text", "sample_text"},
		{"sampleText", "sample_text"},
		{"sample 2 Text", "sample_2_text"},
		{"   sample   2    Text   ", "sample_2_text"},
		{"   $#$sample   2    Text   ", "sample_2_text"},
		{"___$$Base64Encode", "base64_encode"},
		{"FOO:BAR$BAZ", "foo_bar_baz"},
		{"FOO#BAR#BAZ", "foo_bar_baz"},
		{"$something%", "something"},
		{"•¶§ƒ˚foo˙∆˚¬", "foo"},
		// Edges of the already-snake prefix.
		{"", ""},
		{"$$$", ""},
		{"_leading", "leading"},
		{"trailing_", "trailing"},
		{"2Fast", "2fast"},
		{"ab1Cd", "ab1_cd"},
		{"userName", "user_name"},
		{"UserName", "user_name"},
		{"USER NAME", "user_name"},
		{"Order Completed", "order_completed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := Snake(tt.in); got != tt.want {
				t.Fatalf("Snake(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIdent(t *testing.T) {
	t.Parallel()
	long1 := "shipping_address_verification_result_from_third_party_provider_primary"
	long2 := "shipping_address_verification_result_from_third_party_provider_secondary"
	tests := []struct {
		name, in, want string
	}{
		{"empty stays empty", "", ""},
		{"plain", "plan", "plan"},
		{"leading digit gets underscore", "3doctors", "_3doctors"},
		{"63 bytes kept", strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{"long name cut with hash", long1, long1[:54] + "_" + "HASH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Ident(tt.in)
			if strings.HasSuffix(tt.want, "_HASH") {
				if len(got) != MaxIdentLen || !strings.HasPrefix(got, strings.TrimSuffix(tt.want, "HASH")) {
					t.Fatalf("Ident(%q) = %q, want 54-byte prefix + _ + 8 hex", tt.in, got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("Ident(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("long names sharing a prefix stay distinct and stable", func(t *testing.T) {
		t.Parallel()
		a, b := Ident(long1), Ident(long2)
		if a == b {
			t.Fatalf("both shortened to %q", a)
		}
		if Ident(long1) != a {
			t.Fatal("Ident is not stable")
		}
	})
}
