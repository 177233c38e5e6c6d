package platform

import "strconv"

// The JSON records the API serves, written by appending to a buffer.
//
// Full profile: {"id", "username", "full_name", "bio", "city", "category",
// "is_business", "follower_count", "following_count", "posts_count",
// "created_at", "email", "phone"}: the contract's fields plus posts_count
// and created_at. Sign-ups have "" for email and phone.
// SUMMARY: {"id", "username", "full_name", "follower_count", "is_business"}.
// POST: {"id", "author_id", "author": SUMMARY, "text", "created_at", "like_count"}.

func (p *Platform) appendProfile(b []byte, id int) []byte {
	g := p.g
	b = append(b, `{"id":`...)
	b = appendIDString(b, int64(id))
	b = append(b, `,"username":"`...)
	b = g.appendUsername(b, id)
	b = append(b, `","full_name":"`...)
	b = g.appendFullName(b, id)
	b = append(b, `","bio":"`...)
	b = g.appendBio(b, id)
	b = append(b, `",`...)
	b = appendKey(b, "city")
	b = appendString(b, g.city(id))
	b = append(b, ',')
	b = appendKey(b, "category")
	b = appendString(b, g.category(id))
	b = append(b, `,"is_business":`...)
	b = appendBool(b, g.isBusiness(id))
	b = append(b, `,"follower_count":`...)
	b = strconv.AppendInt(b, int64(p.followerCount(id)), 10)
	b = append(b, `,"following_count":`...)
	b = strconv.AppendInt(b, int64(p.followingCount(id)), 10)
	b = append(b, `,"posts_count":`...)
	b = strconv.AppendInt(b, int64(p.postCount(id)), 10)
	b = append(b, `,"created_at":"`...)
	b = appendRFC3339(b, p.created(id))
	b = append(b, `","email":"`...)
	if id <= p.n {
		b = g.appendEmail(b, id)
	}
	b = append(b, `","phone":"`...)
	if id <= p.n {
		b = g.appendPhone(b, id)
	}
	return append(b, `"}`...)
}

func (p *Platform) appendSummary(b []byte, id int) []byte {
	b = append(b, `{"id":`...)
	b = appendIDString(b, int64(id))
	b = append(b, `,"username":"`...)
	b = p.g.appendUsername(b, id)
	b = append(b, `","full_name":"`...)
	b = p.g.appendFullName(b, id)
	b = append(b, `","follower_count":`...)
	b = strconv.AppendInt(b, int64(p.followerCount(id)), 10)
	b = append(b, `,"is_business":`...)
	b = appendBool(b, p.g.isBusiness(id))
	return append(b, '}')
}

func (p *Platform) appendPost(b []byte, author, k int) []byte {
	b = append(b, `{"id":`...)
	b = appendIDString(b, postID(author, k))
	b = append(b, `,"author_id":`...)
	b = appendIDString(b, int64(author))
	b = append(b, `,"author":`...)
	b = p.appendSummary(b, author)
	b = append(b, `,"text":"`...)
	b = p.g.appendPostText(b, author, k)
	b = append(b, `","created_at":"`...)
	b = appendRFC3339(b, p.g.postTime(author, k))
	b = append(b, `","like_count":`...)
	b = strconv.AppendInt(b, int64(p.g.likes(author, k, p.baseFollowers(author))), 10)
	return append(b, '}')
}

// postByID resolves a post id; ok is false for ids no post has.
func (p *Platform) postByID(id int64) (author, k int, ok bool) {
	if id < 100 {
		return 0, 0, false
	}
	author, k = int(id/100), int(id%100)
	if author > p.n || k >= p.g.postCount(author) {
		return 0, 0, false
	}
	return author, k, true
}
