package catalog

import (
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// created is what every plain list (users, tokens, warehouses, audit events,
// integration requests) sorts and pages by.
type created interface {
	proto.Message
	GetCreatedAt() *timestamppb.Timestamp
	GetId() string
}

// sortByCreation orders resources by creation time, then id.
func sortByCreation[T created](items []T) {
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i].GetCreatedAt().AsTime(), items[j].GetCreatedAt().AsTime()
		if !a.Equal(b) {
			return a.Before(b)
		}
		return items[i].GetId() < items[j].GetId()
	})
}

// pageByCreation pages items by creation time (sort "createdAt:asc" or
// "createdAt:desc") with the same key cursor as the list pages.
func pageByCreation[T created](items []T, page Page, newestFirst bool) ([]T, PageInfo, error) {
	t := &table[T]{
		page: "list",
		id:   func(v T) string { return v.GetId() },
		columns: []column[T]{
			{name: "createdAt", typ: colTime, num: func(v T) int64 { return ts(v.GetCreatedAt()) }},
		},
	}
	s := "createdAt:asc"
	if newestFirst {
		s = "createdAt:desc"
	}
	return t.run(items, Query{Sort: s, Page: page})
}

func cloneOf[T proto.Message](v T) T { return proto.Clone(v).(T) }
