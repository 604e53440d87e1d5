// "Online Presence Indicator": webchat/static/js/main.js (DanilMoldavsky/django_websocket
// @ 29bf902), verbatim below these comments but for one change: the tutorial hard-codes
//   const ws = new WebSocket('ws://localhost:8000/ws/presence/');
// and the first line below takes the host from the page instead (window.location.host), so it
// reaches the server that served the page, with that page's session cookie.
const ws = new WebSocket('ws://' + window.location.host + '/ws/presence/');
const presenceEl = document.getElementById('pre_cnt');
const messagesEl = document.getElementById('messages');
const onlineUsers = document.querySelector("#online-users");

ws.onmessage = (event) => {
  onlineUsers.innerHTML = "";
  let data = JSON.parse(event.data)
  presenceEl.innerHTML = data.online;

  const li1 = document.createElement('li');
  li1.innerHTML = data.msg;
  messagesEl.appendChild(li1);

  data.users.forEach(user => {
	const li2 = document.createElement("li");
	li2.classList.add("on-us")
	li2.innerHTML = user;
	onlineUsers.appendChild(li2);
  });

};