// Package routing owns a tenant's routing state: route tables, static and
// policy routes, and the batched route installer that BGP also uses.
package routing
