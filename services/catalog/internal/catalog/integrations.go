package catalog

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Setting types of the integration catalog's settings schemas.
const (
	settingString = "string"
	settingURL    = "url"
	settingNumber = "number"
	settingBool   = "boolean"
	settingMap    = "map"
	settingSelect = "select"
	// settingList is a JSON array of non-empty strings.
	settingList = "list"
	// settingListMap is a JSON object whose values are arrays of non-empty strings.
	settingListMap = "list_map"
)

func opt(name, typ string, required, secret bool, desc string) *catalogv1.IntegrationOption {
	return &catalogv1.IntegrationOption{Name: name, Type: typ, Required: required, Secret: secret, Description: desc}
}

func withDefault(o *catalogv1.IntegrationOption, v any) *catalogv1.IntegrationOption {
	o.DefaultValue, _ = structpb.NewValue(v)
	return o
}

func meta(slug, name, desc string, categories []string, options ...*catalogv1.IntegrationOption) *catalogv1.IntegrationMetadata {
	return &catalogv1.IntegrationMetadata{Slug: slug, Name: name, Description: desc, Categories: categories, Options: options}
}

// sourceCatalog is the integration catalog's source types. A source's type
// and category come from here; sources have no type-specific settings yet.
var sourceCatalog = []*catalogv1.IntegrationMetadata{
	meta("http-api", "HTTP API", "Send events from any language with the Segment HTTP Tracking API.", []string{"Server"}),
	meta("javascript", "Javascript", "analytics.js in the browser.", []string{"Website"}),
	meta("node-js", "Node.js", "@segment/analytics-node on servers.", []string{"Server"}),
	meta("python", "Python", "analytics-python on servers.", []string{"Server"}),
	meta("go", "Go", "analytics-go on servers.", []string{"Server"}),
	meta("java", "Java", "analytics-java on servers.", []string{"Server"}),
	meta("ios", "iOS", "analytics-swift in iOS apps.", []string{"Mobile"}),
	meta("android", "Android", "analytics-kotlin in Android apps.", []string{"Mobile"}),
}

// withChoices makes o a select out of choices.
func withChoices(o *catalogv1.IntegrationOption, choices ...string) *catalogv1.IntegrationOption {
	o.Choices = choices
	return o
}

// orderByUserID is the setting every destination type has: Delivery's
// ordered delivery per userId.
func orderByUserID() *catalogv1.IntegrationOption {
	return withDefault(opt("orderByUserId", settingBool, false, false, "Deliver the events of one userId in order; while one user's event waits for a retry, other users' events keep flowing."), false)
}

// destinationCatalog is the integration catalog's destination types with
// their settings schemas. Delivery implements the types
// (services/delivery/internal/destinations/<name>); this is what a
// destination's settings are validated against when it is saved. The two
// must agree exactly: TestDestinationCatalogMatchesDelivery compares this
// list with testdata/delivery_destination_types.json, which Delivery's
// TestCatalogFixtureIsCurrent keeps equal to Delivery's registry.
var destinationCatalog = []*catalogv1.IntegrationMetadata{
	meta("webhook", "Webhook", "POST every event as JSON to an HTTP endpoint.", []string{"Raw Data"},
		opt("url", settingURL, true, false, "Endpoint that receives the events."),
		opt("headers", settingMap, false, true, "Extra request headers, e.g. an Authorization header."),
		opt("sharedSecret", settingString, false, true, "Signs each body with an HMAC in the signature header."),
		withDefault(opt("signatureHeader", settingString, false, false, "Header that carries the signature."), "X-Signature"),
		withDefault(withChoices(opt("signatureAlgorithm", settingSelect, false, false, "HMAC hash: sha1 (Segment's webhooks) or sha256."), "sha1", "sha256"), "sha1"),
		withDefault(withChoices(opt("method", settingSelect, false, false, "HTTP method."), "POST", "PUT", "PATCH"), "POST"),
		withDefault(opt("batchSize", settingNumber, false, false, "Events per request (1: no batching; up to 1000, sent as a JSON array)."), 1),
		orderByUserID(),
	),
	meta("slack", "Slack", "Post a message per event to a Slack incoming webhook.", []string{"Messaging"},
		opt("webhookUrl", settingURL, true, true, "The Slack incoming webhook URL."),
		withDefault(opt("template", settingString, false, false, "Message template; {{path}} inserts the event's value at path."), "{{userId}} did *{{event}}*"),
		opt("channel", settingString, false, false, "Channel override, e.g. #alerts (legacy webhooks only)."),
		opt("username", settingString, false, false, "Bot name override (legacy webhooks only)."),
		opt("iconUrl", settingString, false, false, "Bot icon override (legacy webhooks only)."),
		orderByUserID(),
	),
	meta("amplitude", "Amplitude", "Product analytics through the HTTP V2 API.", []string{"Analytics"},
		opt("apiKey", settingString, true, true, "The project's API key."),
		withDefault(opt("endpoint", settingURL, false, false, "HTTP V2 API URL (EU: https://api.eu.amplitude.com/2/httpapi)."), "https://api2.amplitude.com/2/httpapi"),
		withDefault(opt("batchSize", settingNumber, false, false, "Events per request (1-1000)."), 1),
		orderByUserID(),
	),
	meta("mixpanel", "Mixpanel", "Product analytics through the ingestion API.", []string{"Analytics"},
		opt("projectToken", settingString, true, false, "The project token."),
		opt("apiSecret", settingString, true, true, "The project's API secret (Basic auth of /import)."),
		withDefault(opt("apiHost", settingURL, false, false, "Ingestion host (EU: https://api-eu.mixpanel.com)."), "https://api.mixpanel.com"),
		withDefault(opt("batchSize", settingNumber, false, false, "Events per /import request (1-2000)."), 1),
		orderByUserID(),
	),
	meta("google-analytics-4", "Google Analytics 4", "Events through the GA4 Measurement Protocol.", []string{"Analytics"},
		opt("measurementId", settingString, true, false, "The stream's measurement id, e.g. G-XXXXXXX."),
		opt("apiSecret", settingString, true, true, "The Measurement Protocol API secret."),
		withDefault(opt("endpoint", settingURL, false, false, "Measurement Protocol URL."), "https://www.google-analytics.com/mp/collect"),
		orderByUserID(),
	),
	meta("redis", "Redis", "Keep each user's traits in a Redis hash.", []string{"Raw Data"},
		withDefault(opt("address", settingString, false, false, "host:port of the Redis server."), "127.0.0.1:6379"),
		opt("username", settingString, false, false, "ACL user."),
		opt("password", settingString, false, true, "The password, if any."),
		withDefault(opt("database", settingNumber, false, false, "Database number."), 0),
		withDefault(opt("keyPrefix", settingString, false, false, "Prefix of the per-user hash keys."), "user:"),
		orderByUserID(),
	),
	meta("rabbitmq", "RabbitMQ", "Publish every event to an AMQP exchange.", []string{"Raw Data"},
		opt("url", settingString, true, true, "AMQP URL, e.g. amqp://user:pw@host:5672/vhost."),
		opt("exchange", settingString, false, false, "Exchange name (default exchange when empty)."),
		withDefault(opt("routingKey", settingString, false, false, "Routing key; {{path}} inserts event values."), "switchyard.{{type}}"),
		orderByUserID(),
	),
}

// warehouseCatalog is the integration catalog's warehouse engines: the
// engine's connection setting, then the settings every engine has
// (warehouseOptions, validated by validateWarehouseSettings).
var warehouseCatalog = []*catalogv1.IntegrationMetadata{
	meta("duckdb", "DuckDB", "An embedded DuckDB database file.", []string{"Warehouse"},
		append([]*catalogv1.IntegrationOption{
			opt("path", settingString, true, false, "Path of the database file."),
		}, warehouseOptions()...)...,
	),
	meta("postgres", "PostgreSQL", "A PostgreSQL database.", []string{"Warehouse"},
		append([]*catalogv1.IntegrationOption{
			opt("dsn", settingString, true, true, "Connection URL, e.g. postgres://user:pw@host:5432/db."),
		}, warehouseOptions()...)...,
	),
}

// warehouseSlug maps a warehouse engine to its catalog slug.
func warehouseSlug(t catalogv1.WarehouseType) string {
	switch t {
	case catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB:
		return "duckdb"
	case catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES:
		return "postgres"
	}
	return ""
}

func findMeta(list []*catalogv1.IntegrationMetadata, slug string) *catalogv1.IntegrationMetadata {
	for _, m := range list {
		if m.Slug == slug {
			return m
		}
	}
	return nil
}

func slugs(list []*catalogv1.IntegrationMetadata) string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = m.Slug
	}
	return strings.Join(out, ", ")
}

func cloneMetas(list []*catalogv1.IntegrationMetadata) []*catalogv1.IntegrationMetadata {
	out := make([]*catalogv1.IntegrationMetadata, len(list))
	for i, m := range list {
		out[i] = proto.Clone(m).(*catalogv1.IntegrationMetadata)
	}
	return out
}

// CatalogSources returns the source types.
func CatalogSources() []*catalogv1.IntegrationMetadata { return cloneMetas(sourceCatalog) }

// CatalogDestinations returns the destination types with their settings schemas.
func CatalogDestinations() []*catalogv1.IntegrationMetadata { return cloneMetas(destinationCatalog) }

// CatalogWarehouses returns the warehouse engines with their settings schemas.
func CatalogWarehouses() []*catalogv1.IntegrationMetadata { return cloneMetas(warehouseCatalog) }

// settingCheck is a further rule of one setting, run once its value has the
// schema's type; field is "settings.<name>".
type settingCheck func(field string, v *structpb.Value) error

// validateSettings checks settings against m's schema, and the settings
// named in checks against those rules too, and reports the first bad field
// (in the schema's order) as "settings.<name>".
func validateSettings(m *catalogv1.IntegrationMetadata, s *structpb.Struct, checks map[string]settingCheck) error {
	fields := s.GetFields()
	known := make([]string, 0, len(m.Options))
	for _, o := range m.Options {
		known = append(known, o.Name)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return invalid("settings."+k, "SETTING_UNKNOWN", "is not a %s setting (allowed: %s)", m.Slug, strings.Join(known, ", "))
		}
	}
	for _, o := range m.Options {
		v, ok := fields[o.Name]
		if _, isNull := v.GetKind().(*structpb.Value_NullValue); !ok || isNull || (v.GetStringValue() == "" && isString(v)) {
			if o.Required {
				return invalid("settings."+o.Name, "REQUIRED", "is required")
			}
			continue
		}
		if err := checkSetting(o, v); err != nil {
			return err
		}
		if check := checks[o.Name]; check != nil {
			if err := check("settings."+o.Name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func isString(v *structpb.Value) bool {
	_, ok := v.GetKind().(*structpb.Value_StringValue)
	return ok
}

func checkSetting(o *catalogv1.IntegrationOption, v *structpb.Value) error {
	field := "settings." + o.Name
	switch o.Type {
	case settingString, settingSelect:
		if !isString(v) {
			return invalid(field, "SETTING_TYPE", "must be a string")
		}
		if o.Type == settingSelect && !slices.Contains(o.Choices, v.GetStringValue()) {
			return invalid(field, "SETTING_CHOICE", "must be one of %s, got %q", strings.Join(o.Choices, ", "), v.GetStringValue())
		}
	case settingURL:
		raw := v.GetStringValue()
		u, err := url.Parse(raw)
		if !isString(v) || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid(field, "URL_FORMAT", "must be an absolute http or https URL, got %s", describe(v))
		}
	case settingNumber:
		if _, ok := v.GetKind().(*structpb.Value_NumberValue); !ok {
			return invalid(field, "SETTING_TYPE", "must be a number")
		}
	case settingBool:
		if _, ok := v.GetKind().(*structpb.Value_BoolValue); !ok {
			return invalid(field, "SETTING_TYPE", "must be true or false")
		}
	case settingMap:
		obj := v.GetStructValue()
		if obj == nil {
			return invalid(field, "SETTING_TYPE", "must be an object of names to string values")
		}
		for k, e := range obj.GetFields() {
			if !isString(e) {
				return invalid(field+"."+k, "SETTING_TYPE", "must be a string")
			}
		}
	case settingList:
		return checkNames(field, v)
	case settingListMap:
		obj := v.GetStructValue()
		if obj == nil {
			return invalid(field, "SETTING_TYPE", "must be an object of names to lists of non-empty strings, got %s", describe(v))
		}
		keys := make([]string, 0, len(obj.GetFields()))
		for k := range obj.GetFields() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := checkNames(field+"."+k, obj.GetFields()[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNames checks that v is a list of non-empty strings; a bad element is
// reported as field[i].
func checkNames(field string, v *structpb.Value) error {
	l := v.GetListValue()
	if l == nil {
		return invalid(field, "SETTING_TYPE", "must be a list of non-empty strings, got %s", describe(v))
	}
	for i, e := range l.GetValues() {
		if !isString(e) || e.GetStringValue() == "" {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "SETTING_TYPE", "must be a non-empty string, got %s", describe(e))
		}
	}
	return nil
}

func describe(v *structpb.Value) string {
	b, err := v.MarshalJSON()
	if err != nil {
		return "an invalid value"
	}
	return string(b)
}

// redacted replaces secret settings in responses.
const redacted = "••••••"

// maskSecrets replaces m's secret settings with the mask so they never leave in clear.
func maskSecrets(m *catalogv1.IntegrationMetadata, s *structpb.Struct) {
	if m == nil || s == nil {
		return
	}
	for _, o := range m.Options {
		if _, ok := s.Fields[o.Name]; ok && o.Secret {
			s.Fields[o.Name] = structpb.NewStringValue(redacted)
		}
	}
}

// mergeSettings applies a settings patch: a null removes a key, the mask
// keeps the stored secret, anything else replaces the key.
func mergeSettings(stored, patch *structpb.Struct) *structpb.Struct {
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range stored.GetFields() {
		out.Fields[k] = v
	}
	for k, v := range patch.GetFields() {
		switch {
		case isNullValue(v):
			delete(out.Fields, k)
		case v.GetStringValue() == redacted:
			// The client sent back what it read: keep the secret.
		default:
			out.Fields[k] = v
		}
	}
	return out
}

func isNullValue(v *structpb.Value) bool {
	_, ok := v.GetKind().(*structpb.Value_NullValue)
	return ok || v == nil
}

func unknownType(field, kind, got string, list []*catalogv1.IntegrationMetadata) error {
	return invalid(field, strings.ToUpper(kind)+"_TYPE_UNKNOWN", "unknown %s type %q (the catalog has: %s)", kind, got, slugs(list))
}
