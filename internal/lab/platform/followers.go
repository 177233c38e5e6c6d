package platform

// Followers is id's whole follower list as GET /v1/users/{id}/followers
// serves it, page after page: the ground truth an audience count is
// checked against.
func (p *Platform) Followers(id int) []int32 {
	_, total := p.followersPage(id, 0, 0)
	page, _ := p.followersPage(id, 0, total)
	return page
}
