package main

import (
	"container/list"
	"errors"
	"sync"
	"time"
)

var (
	// ErrSessionNotFound: no such session (never created, ended or expired).
	ErrSessionNotFound = errors.New("session not found")
	// ErrSessionBusy: a turn is already running for the session.
	ErrSessionBusy = errors.New("session busy")
	// ErrSessionOwner: the session belongs to another user.
	ErrSessionOwner = errors.New("session owned by another user")
	// ErrSessionsFull: max_sessions reached and every session is mid-turn.
	ErrSessionsFull = errors.New("session store full")
)

// sessionOwnerError is ErrSessionOwner (errors.Is) with the owner, for
// the security incident it raises.
type sessionOwnerError struct{ owner string }

func (e *sessionOwnerError) Error() string        { return ErrSessionOwner.Error() }
func (e *sessionOwnerError) Is(target error) bool { return target == ErrSessionOwner }

// sessionOwner returns the owner carried by an ErrSessionOwner error, or "".
func sessionOwner(err error) string {
	var oe *sessionOwnerError
	if errors.As(err, &oe) {
		return oe.owner
	}
	return ""
}

// session is one conversation held in memory.
type session struct {
	id    string
	owner string
	conv  Conversation
	busy  bool
	used  time.Time     // last access, for idle expiry and LRU
	elem  *list.Element // position in SessionStore.lru
}

// SessionStore holds conversations by session id, bounded in number (least
// recently used evicted first, never one that is mid-turn) and in idle time
// (expired lazily on access and by Sweep). It enforces one turn at a time
// per session. Safe for concurrent use.
type SessionStore struct {
	max     int
	idle    time.Duration
	now     func() time.Time
	onCount func(n int) // called with the new size after it changes, outside the lock

	mu       sync.Mutex
	sessions map[string]*session
	lru      *list.List // front = most recently used
}

func newSessionStore(max int, idle time.Duration, now func() time.Time, onCount func(int)) *SessionStore {
	if onCount == nil {
		onCount = func(int) {}
	}
	return &SessionStore{max: max, idle: idle, now: now, onCount: onCount,
		sessions: make(map[string]*session), lru: list.New()}
}

// Len returns the number of sessions held.
func (st *SessionStore) Len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.sessions)
}

// expired reports whether s has been idle too long; the caller holds mu.
func (st *SessionStore) expired(s *session, now time.Time) bool {
	return !s.busy && st.idle > 0 && now.Sub(s.used) >= st.idle
}

// removeLocked drops s; the caller holds mu.
func (st *SessionStore) removeLocked(s *session) {
	delete(st.sessions, s.id)
	st.lru.Remove(s.elem)
}

// Begin claims session id for a turn by userID, creating it if needed.
// It returns the conversation to work on and a finish function that
// stores the new conversation and releases the claim; finish must be
// called exactly once. Errors: ErrSessionOwner, ErrSessionBusy,
// ErrSessionsFull.
func (st *SessionStore) Begin(id, userID string) (Conversation, func(Conversation), error) {
	now := st.now()
	st.mu.Lock()
	s, ok := st.sessions[id]
	if ok && st.expired(s, now) {
		st.removeLocked(s)
		ok = false
	}
	created := false
	if !ok {
		for len(st.sessions) >= st.max {
			victim := st.lru.Back()
			for victim != nil && victim.Value.(*session).busy {
				victim = victim.Prev()
			}
			if victim == nil {
				st.mu.Unlock()
				return Conversation{}, nil, ErrSessionsFull
			}
			st.removeLocked(victim.Value.(*session))
		}
		s = &session{id: id, owner: userID}
		s.elem = st.lru.PushFront(s)
		st.sessions[id] = s
		created = true
	}
	switch {
	case s.owner != userID:
		st.mu.Unlock()
		return Conversation{}, nil, &sessionOwnerError{owner: s.owner}
	case s.busy:
		st.mu.Unlock()
		return Conversation{}, nil, ErrSessionBusy
	}
	s.busy = true
	s.used = now
	st.lru.MoveToFront(s.elem)
	conv := s.conv
	n := len(st.sessions)
	st.mu.Unlock()
	if created {
		st.onCount(n)
	}

	var once sync.Once
	finish := func(c Conversation) {
		once.Do(func() {
			st.mu.Lock()
			s.busy = false
			s.used = st.now()
			// Ended meanwhile (DELETE) or evicted: the result is dropped.
			if cur, ok := st.sessions[id]; ok && cur == s {
				if c.Status == StatusEnded {
					st.removeLocked(s)
				} else {
					s.conv = c
				}
			}
			n := len(st.sessions)
			st.mu.Unlock()
			st.onCount(n)
		})
	}
	return conv, finish, nil
}

// Get returns a copy of the conversation of session id and its owner.
func (st *SessionStore) Get(id string) (Conversation, string, error) {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.sessions[id]
	if !ok || st.expired(s, now) || s.conv.Status == StatusNew {
		return Conversation{}, "", ErrSessionNotFound
	}
	return s.conv, s.owner, nil
}

// End removes session id after running EndConversation through reduce
// (so an invalid end is reported like any other transition). check, if not
// nil, may veto the removal given the owner (authorization).
func (st *SessionStore) End(id string, at time.Time, check func(owner string) error) (Conversation, error) {
	now := st.now()
	st.mu.Lock()
	s, ok := st.sessions[id]
	if !ok || st.expired(s, now) || s.conv.Status == StatusNew {
		st.mu.Unlock()
		return Conversation{}, ErrSessionNotFound
	}
	if check != nil {
		if err := check(s.owner); err != nil {
			st.mu.Unlock()
			return Conversation{}, err
		}
	}
	ended, _, err := reduce(s.conv, EndConversation{At: at})
	if err != nil {
		st.mu.Unlock()
		return Conversation{}, err
	}
	st.removeLocked(s)
	n := len(st.sessions)
	st.mu.Unlock()
	st.onCount(n)
	return ended, nil
}

// Sweep drops every idle-expired session and returns how many it dropped.
func (st *SessionStore) Sweep() int {
	now := st.now()
	st.mu.Lock()
	dropped := 0
	for e := st.lru.Back(); e != nil; {
		prev := e.Prev()
		if s := e.Value.(*session); st.expired(s, now) {
			st.removeLocked(s)
			dropped++
		}
		e = prev
	}
	n := len(st.sessions)
	st.mu.Unlock()
	if dropped > 0 {
		st.onCount(n)
	}
	return dropped
}
